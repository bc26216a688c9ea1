/**
 * SR and SEG written against a real CT series' headers (LIDC-IDRI-0001, 512x512, GE, empty PatientName): the
 * patient/study copy and the geometry must still give dciodvfy-clean objects. Skips when ../shared/data is absent.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { data } from "dcmjs";
import { beforeAll, describe, expect, it } from "vitest";
import type { CtVolume, Vector3 } from "../../src/dicom/ct-volume.js";
import type { Finding } from "../../src/dicom/finding.js";
import { writeSegmentation } from "../../src/dicom/seg.js";
import { LUNG, NODULE } from "../../src/dicom/sr/codes.js";
import { writeMeasurementReport } from "../../src/dicom/sr/measurement-report.js";
import { deterministicUid } from "../../src/dicom/uid.js";
import { ALGORITHM, dciodvfy, readNaturalized, SEG_IDENTITY, SR_IDENTITY, tempFile } from "../helpers/sr-fixtures.js";
import { requireTools } from "../helpers/system-tools.js";

const SERIES_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "shared", "data", "ct", "lidc-idri-0001-cect");
const present = existsSync(SERIES_DIR);
if (!present && process.env.CI) throw new Error(`${SERIES_DIR} is missing, and CI is set`);

/** Eight consecutive slices from the middle of the real series (headers only; voxels are not needed here). */
function realVolume(): CtVolume {
  const headers = readdirSync(SERIES_DIR)
    .filter((f) => f.endsWith(".dcm"))
    .map((f) => {
      const b = readFileSync(path.join(SERIES_DIR, f));
      const buffer = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
      return data.DicomMetaDictionary.naturalizeDataset(data.DicomMessage.readFile(buffer, { untilTag: "7FE00010" }).dict) as Record<string, any>;
    })
    .sort((a, b) => a.ImagePositionPatient[2] - b.ImagePositionPatient[2]);
  const mid = Math.floor(headers.length / 2) - 4;
  const slices = headers.slice(mid, mid + 8);
  const first = slices[0]!;
  return {
    studyInstanceUID: first.StudyInstanceUID,
    seriesInstanceUID: first.SeriesInstanceUID,
    frameOfReferenceUID: first.FrameOfReferenceUID,
    rows: first.Rows,
    columns: first.Columns,
    slices: slices.length,
    hu: new Float32Array(first.Rows * first.Columns * slices.length),
    pixelSpacing: first.PixelSpacing.map(Number) as [number, number],
    sliceSpacing: slices[1]!.ImagePositionPatient[2] - first.ImagePositionPatient[2],
    imageOrientationPatient: first.ImageOrientationPatient.map(Number) as CtVolume["imageOrientationPatient"],
    imagePositionPatient: slices.map((h) => h.ImagePositionPatient.map(Number) as Vector3),
    sourceSlices: slices.map((h) => ({ sopClassUID: h.SOPClassUID, sopInstanceUID: h.SOPInstanceUID })),
    sliceHeaders: slices,
  };
}

describe.skipIf(!present)("SR and SEG on a real CT series' headers", () => {
  let sr: Uint8Array;
  let seg: Uint8Array;
  let volume: CtVolume;

  beforeAll(() => {
    volume = realVolume();
    const pixels = Array.from({ length: 5 }, (_, d) => (300 + d) * volume.columns + 150);
    const [x, y, z] = volume.imagePositionPatient[3]!;
    const finding: Finding = {
      trackingId: "Nodule 1",
      trackingUid: deterministicUid("ct-enhance-test", "real", "tracking", 1),
      findingCode: NODULE,
      findingSiteCode: LUNG,
      centroidPatientMm: [x + 150 * volume.pixelSpacing[1], y + 302 * volume.pixelSpacing[0], z],
      mask: [{ slice: 3, pixels }],
      longestDiameterMm: 3.5,
      volumeMm3: 8.6,
      probability: 0.5,
    };
    sr = writeMeasurementReport({ volume, findings: [finding], algorithm: ALGORITHM, identity: SR_IDENTITY, segmentation: SEG_IDENTITY });
    seg = writeSegmentation({ volume, findings: [finding], algorithm: ALGORITHM, identity: SEG_IDENTITY });
  });

  it("keep the source's patient, study and frame of reference", () => {
    const srDs = readNaturalized(sr);
    const segDs = readNaturalized(seg);
    for (const ds of [srDs, segDs]) {
      expect(ds.PatientID).toBe("LIDC-IDRI-0001");
      expect(ds.StudyInstanceUID).toBe(volume.studyInstanceUID);
    }
    expect(segDs.FrameOfReferenceUID).toBe(volume.frameOfReferenceUID);
    expect([segDs.Rows, segDs.Columns]).toEqual([512, 512]);
  });

  it.skipIf(!requireTools("dciodvfy"))("are dciodvfy-clean", () => {
    for (const [name, bytes] of [["sr.dcm", sr], ["seg.dcm", seg]] as const) {
      const result = dciodvfy(tempFile(name, bytes));
      expect(result.errors, result.output).toEqual([]);
    }
  });
});
