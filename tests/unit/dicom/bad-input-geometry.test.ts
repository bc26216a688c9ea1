/**
 * Bad and odd input, geometry (issue 14): real LIDC-IDRI-0002 slices edited the way scanners, archives and people
 * get them wrong, through the volume stage the job runs. Each case is processed with the geometry checked, or refused
 * with a reason that names the instance and what is wrong.
 */
import { requireCtData } from "../../helpers/ct-data.js";
import {
  type CorpusSeries,
  describeVolumeCases,
  edit,
  expectBaseGeometry,
  expectBaseHu,
  testUid,
  type VolumeCase,
} from "../../helpers/bad-input-corpus.js";
import { expect } from "vitest";

const ready = requireCtData("lidc-idri-0002-ncct");

/** The base slices with slice `k` (0-based, position order) edited. */
const editSlice = (base: CorpusSeries, k: number, change: (h: Record<string, unknown>) => void): Uint8Array[] =>
  base.slices.map((bytes, i) => (i === k ? edit(bytes, change) : bytes));

/** Every slice edited, with its index in position order. */
const editAll = (base: CorpusSeries, change: (h: Record<string, unknown>, k: number) => void): Uint8Array[] =>
  base.slices.map((bytes, k) => edit(bytes, (h) => change(h, k)));

const z = (h: Record<string, unknown>): number => Number((h.ImagePositionPatient as unknown[])[2]);
const tilt = (15 * Math.PI) / 180;

const cases: VolumeCase[] = [
  { name: "the real slices as they are", instances: (b) => b.slices, outcome: { processed: expectBaseHu } },
  { name: "instances arriving in reverse order", instances: (b) => [...b.slices].reverse(), outcome: { processed: expectBaseHu } },
  {
    name: "slice 7 without ImagePositionPatient",
    instances: (b) => editSlice(b, 6, (h) => delete h.ImagePositionPatient),
    outcome: { refused: /^instance #7 received \(InstanceNumber \d+, SOPInstanceUID [\d.]+\): ImagePositionPatient is missing/ },
  },
  {
    name: "ImagePositionPatient that is not numbers (read back as empty values)",
    instances: (b) => editSlice(b, 2, (h) => (h.ImagePositionPatient = ["a", "b", "c"])),
    outcome: { refused: /instance #3 .*: ImagePositionPatient is \[null,null,null\]; 3 number\(s\) are required/ },
  },
  {
    name: "PixelSpacing missing",
    instances: (b) => editSlice(b, 4, (h) => delete h.PixelSpacing),
    outcome: { refused: /instance #5 .*: PixelSpacing is missing/ },
  },
  {
    name: "PixelSpacing zero in every slice",
    instances: (b) => editAll(b, (h) => (h.PixelSpacing = [0, 0])),
    outcome: { refused: /instance #1 .*: PixelSpacing is \[0,0\]; two positive numbers \(mm\) are required/ },
  },
  {
    name: "PixelSpacing of one slice differs",
    instances: (b) => editSlice(b, 3, (h) => (h.PixelSpacing = [0.7, 0.7])),
    outcome: { refused: /instance #4 .* has PixelSpacing \[0\.7, 0\.7\] mm but the other 11 slice\(s\) of the series have \[5\.4531, 5\.4531\] mm/ },
  },
  {
    name: "mixed matrix sizes (one slice 512x512)",
    instances: (b) => editSlice(b, 5, (h) => Object.assign(h, { Rows: 512, Columns: 512, PixelData: [new ArrayBuffer(512 * 512 * 2)] })),
    outcome: { refused: /instance #6 .* has a matrix of 512 rows x 512 columns but the other 11 slice\(s\) .* have 64 rows x 64 columns/ },
  },
  {
    name: "mixed orientations (one slice coronal)",
    instances: (b) => editSlice(b, 8, (h) => (h.ImageOrientationPatient = [1, 0, 0, 0, 0, -1])),
    outcome: { refused: /instance #9 .* has ImageOrientationPatient \[1, 0, 0, 0, 0, -1\] but the other 11 slice\(s\) .* have \[1, 0, 0, 0, 1, 0\]/ },
  },
  {
    name: "ImageOrientationPatient all zero",
    instances: (b) => editAll(b, (h) => (h.ImageOrientationPatient = [0, 0, 0, 0, 0, 0])),
    outcome: { refused: /ImageOrientationPatient \[0, 0, 0, 0, 0, 0\] is not two perpendicular unit vectors/ },
  },
  {
    name: "a coronal series (consistent orientation, positions along y)",
    instances: (b) => editAll(b, (h, k) => {
      h.ImageOrientationPatient = [1, 0, 0, 0, 0, -1];
      h.ImagePositionPatient = [-175.5, -50 + k * 1.25, 100];
    }),
    outcome: {
      processed: (v) => {
        expect(v.slices).toBe(12);
        expect(v.sliceSpacing).toBeCloseTo(1.25, 3);
        // The normal (row x column) is [0, 1, 0]: the slices ascend along +y.
        expect(v.imagePositionPatient.map((p) => p[1])).toEqual([...Array(12).keys()].map((k) => -50 + k * 1.25));
      },
    },
  },
  {
    name: "duplicate positions (one instance sent twice under a new SOPInstanceUID)",
    instances: (b) => [...b.slices, edit(b.slices[5]!, (h) => (h.SOPInstanceUID = "2.25.14000000000000000000001"))],
    outcome: { refused: /share the position -?[\d.]+ mm along the slice normal: .*2\.25\.14000000000000000000001.*\(duplicate instances/ },
  },
  {
    name: "two interleaved acquisitions at the same positions (AcquisitionNumber 2 and 3)",
    instances: (b) => [
      ...editAll(b, (h) => (h.AcquisitionNumber = 2)),
      ...editAll(b, (h) => Object.assign(h, { AcquisitionNumber: 3, SOPInstanceUID: testUid() })),
    ],
    outcome: { refused: /^acquisitions 2 and 3 \(AcquisitionNumber\) overlap along the slice normal \(.* mm\): the series holds interleaved stacks/ },
  },
  {
    name: "two interleaved stacks half a spacing apart (AcquisitionNumber 1 and 2)",
    instances: (b) => [
      ...editAll(b, (h) => (h.AcquisitionNumber = 1)),
      ...editAll(b, (h) => {
        Object.assign(h, { AcquisitionNumber: 2, SOPInstanceUID: testUid() });
        h.ImagePositionPatient = [-175.5, -174.5, z(h) + 0.625];
      }),
    ],
    outcome: { refused: /^acquisitions 1 and 2 \(AcquisitionNumber\) overlap along the slice normal \(.* mm\): the series holds interleaved stacks/ },
  },
  {
    name: "gantry tilt 15 degrees (every slice tilted alike)",
    instances: (b) => editAll(b, (h) => {
      h.ImageOrientationPatient = [1, 0, 0, 0, Math.cos(tilt), Math.sin(tilt)].map((v) => Number(v.toFixed(6)));
      h.GantryDetectorTilt = 15;
    }),
    outcome: {
      processed: (v, base) => {
        // The table moves 1.25 mm a slice; the slices' normal is tilted, so they lie 1.25 cos(15°) apart along it.
        expect(v.sliceSpacing).toBeCloseTo(1.25 * Math.cos(tilt), 3);
        expect(v.imagePositionPatient).toEqual(base.imagePositionPatient);
        expect(v.imageOrientationPatient[5]).toBeCloseTo(Math.sin(tilt), 5);
      },
    },
  },
  {
    name: "uneven gaps (slice 6 missing)",
    instances: (b) => b.slices.filter((_, k) => k !== 5),
    outcome: { refused: /slices 5 and 6 \(in position order: .*\) are 2\.5 mm apart where the series spacing is 1\.25 mm \(missing slice\?\)/ },
  },
  {
    name: "uneven gaps (slice 4 shifted by 0.4 mm)",
    instances: (b) => editSlice(b, 3, (h) => (h.ImagePositionPatient = [-175.5, -174.5, z(h) + 0.4])),
    outcome: { refused: /slices 3 and 4 .* are 1\.65 mm apart where the series spacing is 1\.25 mm \(uneven reconstruction\?\); 1 other gap\(s\) are irregular too/ },
  },
  { name: "a single slice", instances: (b) => b.slices.slice(0, 1), outcome: { refused: /^the series has 1 slice\(s\); at least 10 are needed/ } },
  { name: "no instance at all", instances: () => [], outcome: { refused: /^the series has 0 slice\(s\)/ } },
  {
    name: "a slice of another series",
    instances: (b) => editSlice(b, 2, (h) => (h.SeriesInstanceUID = "2.25.1400000000000002")),
    outcome: { refused: /instance #3 .* has SeriesInstanceUID 2\.25\.1400000000000002 but the other 11/ },
  },
  {
    name: "a slice in another frame of reference",
    instances: (b) => editSlice(b, 9, (h) => (h.FrameOfReferenceUID = "2.25.1400000000000003")),
    outcome: { refused: /instance #10 .* has FrameOfReferenceUID 2\.25\.1400000000000003 but the other 11/ },
  },
  {
    name: "FrameOfReferenceUID missing",
    instances: (b) => editSlice(b, 0, (h) => delete h.FrameOfReferenceUID),
    outcome: { refused: /instance #1 .*: FrameOfReferenceUID is missing/ },
  },
  {
    name: "a localizer in the series (ImageType LOCALIZER, sagittal)",
    instances: (b) => [
      ...b.slices.slice(0, 4),
      edit(b.slices[4]!, (h) => Object.assign(h, {
        ImageType: ["ORIGINAL", "PRIMARY", "LOCALIZER"],
        ImageOrientationPatient: [0, 1, 0, 0, 0, -1],
        ImagePositionPatient: [0, -174.5, -100],
        SOPInstanceUID: "2.25.1400000000000004",
      })),
      ...b.slices.slice(4),
    ],
    outcome: {
      processed: (v, base) => {
        expectBaseGeometry(v, base);
        expect(v.leftOut).toEqual([expect.stringMatching(/instance #5 .*2\.25\.1400000000000004.* is a localizer \(ImageType ORIGINAL\\PRIMARY\\LOCALIZER\)/)]);
      },
    },
  },
];

describeVolumeCases("bad and odd input: geometry (LIDC-IDRI-0002, 12 slices at 64x64)", ready, cases);
