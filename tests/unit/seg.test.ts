/**
 * DICOM SEG writer: write, then read back with dciodvfy, with dcmjs (every frame's geometry, source and bits), and
 * with the Cornerstone3D SEG loader OHIF uses (createFromDICOMSegBuffer), which must rebuild each finding's mask and
 * centroid on the source slices.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { CtVolume } from "../../src/dicom/ct-volume.js";
import type { Finding } from "../../src/dicom/finding.js";
import { SopClass } from "../../src/dicom/part10.js";
import { packBinaryFrames, type SegmentationInput, writeSegmentation } from "../../src/dicom/seg.js";
import { ALGORITHM, dciodvfy, readNaturalized, SEG_IDENTITY, syntheticVolume, tempFile, twoFindings } from "../helpers/sr-fixtures.js";
import { requireTools } from "../helpers/system-tools.js";

const haveDciodvfy = requireTools("dciodvfy");

let volume: CtVolume;
let findings: Finding[];
let input: SegmentationInput;
let bytes: Uint8Array;

/** Expected frames: by segment, then by slice along the normal. */
function expectedFrames(): { segment: number; slice: number; pixels: number[] }[] {
  return findings.flatMap((f, i) =>
    [...f.mask].sort((a, b) => a.slice - b.slice).map((m) => ({ segment: i + 1, slice: m.slice, pixels: [...m.pixels].sort((a, b) => a - b) })),
  );
}

beforeAll(() => {
  volume = syntheticVolume();
  findings = twoFindings(volume);
  input = { volume, findings, algorithm: ALGORITHM, identity: SEG_IDENTITY };
  bytes = writeSegmentation(input);
});

describe("DICOM Segmentation", () => {
  it.skipIf(!haveDciodvfy)("passes dciodvfy with no errors", () => {
    const result = dciodvfy(tempFile("seg.dcm", bytes));
    expect(result.output).toMatch(/Segmentation/);
    expect(result.errors, result.output).toEqual([]);
    expect(result.warnings, result.output).toEqual([]);
  });

  it("has one BINARY segment per finding, tied to the SR by tracking ID and UID", () => {
    const ds = readNaturalized(bytes);
    expect(ds.SOPClassUID).toBe(SopClass.Segmentation);
    expect(ds.Modality).toBe("SEG");
    expect(ds.SegmentationType).toBe("BINARY");
    expect(ds.StudyInstanceUID).toBe(volume.studyInstanceUID);
    expect(ds.FrameOfReferenceUID).toBe(volume.frameOfReferenceUID);
    expect(ds.SeriesDescription).toMatch(/NOT FOR DIAGNOSTIC USE/);
    expect(ds.ImageComments).toMatch(/AI-generated/);
    expect([ds.Rows, ds.Columns]).toEqual([volume.rows, volume.columns]);
    expect([ds.BitsAllocated, ds.BitsStored, ds.HighBit]).toEqual([1, 1, 0]);
    expect(ds.SegmentSequence.map((s: any) => [s.SegmentNumber, s.SegmentLabel, s.TrackingUID, s.SegmentAlgorithmType])).toEqual(
      findings.map((f, i) => [i + 1, f.trackingId, f.trackingUid, "AUTOMATIC"]),
    );
    expect(ds.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeValue).toBe("27925004");
    // A colour of its own per segment, so a viewer need not pick one (OHIF warned that it did).
    const colours = ds.SegmentSequence.map((s: any) => s.RecommendedDisplayCIELabValue.map(Number).join(","));
    expect(colours.every((c: string) => /^\d+,\d+,\d+$/.test(c))).toBe(true);
    if (findings.length > 1) expect(new Set(colours).size).toBe(Math.min(findings.length, 4));
    const shared = ds.SharedFunctionalGroupsSequence[0];
    expect(shared.PlaneOrientationSequence[0].ImageOrientationPatient.map(Number)).toEqual(volume.imageOrientationPatient);
    expect(shared.PixelMeasuresSequence[0].PixelSpacing.map(Number)).toEqual(volume.pixelSpacing);
    expect(Number(shared.PixelMeasuresSequence[0].SpacingBetweenSlices)).toBe(volume.sliceSpacing);
  });

  it("writes one frame per slice a segment covers, each on its source slice, bits as in the mask", () => {
    const ds = readNaturalized(bytes);
    const expected = expectedFrames();
    expect(Number(ds.NumberOfFrames)).toBe(expected.length);
    expect(ds.PerFrameFunctionalGroupsSequence).toHaveLength(expected.length);
    const packed = new Uint8Array(ds.PixelData[0] as ArrayBuffer);
    const perFrame = volume.rows * volume.columns;
    expect(packed.length).toBe(Math.ceil((expected.length * perFrame) / 8 / 2) * 2);
    expected.forEach((frame, f) => {
      const group = ds.PerFrameFunctionalGroupsSequence[f];
      expect(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber).toBe(frame.segment);
      expect(group.PlanePositionSequence[0].ImagePositionPatient.map(Number)).toEqual(volume.imagePositionPatient[frame.slice]);
      const source = group.DerivationImageSequence[0].SourceImageSequence[0];
      expect(source.ReferencedSOPInstanceUID).toBe(volume.sourceSlices[frame.slice]!.sopInstanceUID);
      expect(source.PurposeOfReferenceCodeSequence[0].CodeValue).toBe("121322");
      expect(group.FrameContentSequence[0].DimensionIndexValues[0]).toBe(frame.segment);
      const set: number[] = [];
      for (let p = 0; p < perFrame; p++) {
        const bit = f * perFrame + p;
        if (packed[bit >> 3]! & (1 << (bit & 7))) set.push(p);
      }
      expect(set).toEqual(frame.pixels);
    });
    const referenced = ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence.map((r: any) => r.ReferencedSOPInstanceUID);
    expect(referenced).toEqual([2, 3, 4, 5, 6].map((k) => volume.sourceSlices[k]!.sopInstanceUID));
  });

  it("packs frames back to back, not byte-aligned per frame", () => {
    // 3 frames of 3x3 = 27 bits: frame 1 starts at bit 9 (byte 1, bit 1), frame 2 at bit 18 (byte 2, bit 2).
    const packed = packBinaryFrames([[0], [0, 8], [4]], 9);
    expect([...packed]).toEqual([0b00000001, 0b00000010, 0b01000010, 0b00000000]);
  });

  it("is read back by the Cornerstone3D SEG loader OHIF uses, masks and centroids intact", async () => {
    const core = await import("@cornerstonejs/core");
    const { adaptersSEG } = await import("@cornerstonejs/adapters");
    const imageIds = volume.sourceSlices.map((s) => `ct-enhance-test:${s.sopInstanceUID}`);
    const metadata = new Map<string, Record<string, unknown>>();
    imageIds.forEach((imageId, k) => {
      const ipp = volume.imagePositionPatient[k]!;
      metadata.set(imageId, {
        generalImageModule: { sopInstanceUID: volume.sourceSlices[k]!.sopInstanceUID },
        generalSeriesModule: { seriesInstanceUID: volume.seriesInstanceUID, modality: "CT" },
        instance: { ...volume.sliceHeaders[k], Rows: volume.rows, Columns: volume.columns },
        imagePlaneModule: {
          frameOfReferenceUID: volume.frameOfReferenceUID,
          rows: volume.rows,
          columns: volume.columns,
          imagePositionPatient: ipp,
          imageOrientationPatient: volume.imageOrientationPatient,
          rowCosines: volume.imageOrientationPatient.slice(0, 3),
          columnCosines: volume.imageOrientationPatient.slice(3),
          pixelSpacing: volume.pixelSpacing,
          rowPixelSpacing: volume.pixelSpacing[0],
          columnPixelSpacing: volume.pixelSpacing[1],
        },
        imagePixelModule: {
          rows: volume.rows,
          columns: volume.columns,
          bitsAllocated: 16,
          bitsStored: 16,
          highBit: 15,
          pixelRepresentation: 1,
          samplesPerPixel: 1,
          photometricInterpretation: "MONOCHROME2",
        },
      });
    });
    const provider = (type: string, imageId: unknown) => metadata.get(String(imageId))?.[type];
    core.metaData.addProvider(provider, 10_000);
    try {
      const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
      const result = await adaptersSEG.Cornerstone3D.Segmentation.createFromDICOMSegBuffer(imageIds, buffer, {
        metadataProvider: { get: provider },
      });
      expect(result.segMetadata.data.slice(1).map((s: any) => s.SegmentLabel)).toEqual(findings.map((f) => f.trackingId));
      // One entry per SEG frame, at the index of the source slice it lies on.
      const frames = (result.segmentsOnFrame as (number[] | undefined)[]).flatMap((segments, k) => (segments ?? []).map((s) => [s, k]));
      expect(frames.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!)).toEqual(expectedFrames().map((f) => [f.segment, f.slice]));
      // Labelmap images, one per source slice: the segment numbers they hold, pixel for pixel.
      const labelmaps = (result.labelMapImages as any[]).flat();
      expect(labelmaps).toHaveLength(volume.slices);
      labelmaps.forEach((image, k) => {
        const pixels: ArrayLike<number> = image.voxelManager?.getScalarData?.() ?? image.getPixelData();
        const bySegment = new Map<number, number[]>();
        for (let p = 0; p < pixels.length; p++) {
          if (pixels[p]) bySegment.set(pixels[p]!, [...(bySegment.get(pixels[p]!) ?? []), p]);
        }
        const want = new Map<number, number[]>();
        findings.forEach((f, i) => {
          const m = f.mask.find((x) => x.slice === k);
          if (m) want.set(i + 1, [...m.pixels].sort((a, b) => a - b));
        });
        expect(bySegment, `slice ${k}`).toEqual(want);
      });
      findings.forEach((f, i) => {
        const { world } = result.centroids.get(i + 1);
        expect(world.x).toBeCloseTo(f.centroidPatientMm[0], 2);
        expect(world.y).toBeCloseTo(f.centroidPatientMm[1], 2);
        expect(world.z).toBeCloseTo(f.centroidPatientMm[2], 2);
      });
    } finally {
      core.metaData.removeProvider(provider);
    }
  });

  it("names the bad argument", () => {
    expect(() => writeSegmentation({ ...input, findings: [] })).toThrow(/^findings: /);
    expect(() => writeSegmentation({ ...input, findings: [{ ...findings[0]!, mask: [{ slice: 1, pixels: [64 * 64] }] }] })).toThrow(
      /findings\[0\]\.mask\[0\]\.pixels: 4096 is outside a 64x64 slice/,
    );
    expect(() => writeSegmentation({ ...input, identity: { ...SEG_IDENTITY, seriesDescription: "Nodules" } })).toThrow(
      /identity\.seriesDescription: must say "NOT FOR DIAGNOSTIC USE"/,
    );
    expect(() => writeSegmentation({ ...input, identity: { ...SEG_IDENTITY, sopInstanceUID: "not-a-uid" } })).toThrow(
      /identity\.sopInstanceUID/,
    );
  });
});
