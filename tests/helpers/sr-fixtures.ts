/**
 * A small synthetic CT volume (8 axial slices of 64x64, 0.7 mm pixels, 1.25 mm apart, patient lying supine) with two
 * nodule findings, and everything the SR/SEG tests need: deterministic UIDs, a fixed date, tool helpers.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { data } from "dcmjs";
import type { CtVolume, Vector3 } from "../../src/dicom/ct-volume.js";
import type { AlgorithmIdentity, Finding } from "../../src/dicom/finding.js";
import { longAxis } from "../../src/dicom/long-axis.js";
import { LUNG, NODULE } from "../../src/dicom/sr/codes.js";
import { deterministicUid } from "../../src/dicom/uid.js";

export const CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2";
const uid = (...parts: (string | number)[]): string => deterministicUid("ct-enhance-test", ...parts);

export const ROWS = 64;
export const COLUMNS = 64;
export const SLICES = 8;
export const PIXEL_SPACING: [number, number] = [0.7, 0.7];
export const SLICE_SPACING = 1.25;
const ORIGIN: Vector3 = [-22.4, -180.4, -150];

export function syntheticVolume(): CtVolume {
  const studyInstanceUID = uid("study");
  const seriesInstanceUID = uid("series");
  const frameOfReferenceUID = uid("for");
  const imagePositionPatient = Array.from({ length: SLICES }, (_, k): Vector3 => [ORIGIN[0], ORIGIN[1], ORIGIN[2] + k * SLICE_SPACING]);
  const sourceSlices = imagePositionPatient.map((_, k) => ({ sopClassUID: CT_IMAGE_STORAGE, sopInstanceUID: uid("instance", k) }));
  const sliceHeaders = imagePositionPatient.map((ipp, k) => ({
    SOPClassUID: CT_IMAGE_STORAGE,
    SOPInstanceUID: sourceSlices[k]!.sopInstanceUID,
    PatientName: "Synthetic^Phantom",
    PatientID: "PHANTOM-001",
    PatientBirthDate: "19700101",
    PatientSex: "O",
    StudyInstanceUID: studyInstanceUID,
    StudyDate: "20240102",
    StudyTime: "101500",
    StudyID: "S1",
    AccessionNumber: "ACC-1",
    ReferringPhysicianName: "",
    StudyDescription: "CT CHEST",
    SeriesInstanceUID: seriesInstanceUID,
    Modality: "CT",
    FrameOfReferenceUID: frameOfReferenceUID,
    PositionReferenceIndicator: "",
    ImagePositionPatient: ipp,
    ImageOrientationPatient: [1, 0, 0, 0, 1, 0],
    PixelSpacing: PIXEL_SPACING,
    SliceThickness: 1.25,
  }));
  return {
    studyInstanceUID,
    seriesInstanceUID,
    frameOfReferenceUID,
    rows: ROWS,
    columns: COLUMNS,
    slices: SLICES,
    hu: new Float32Array(ROWS * COLUMNS * SLICES).fill(-800),
    pixelSpacing: PIXEL_SPACING,
    sliceSpacing: SLICE_SPACING,
    imageOrientationPatient: [1, 0, 0, 0, 1, 0],
    imagePositionPatient,
    sourceSlices,
    sliceHeaders,
  };
}

/** In-plane pixel indices of a disk of `radius` pixels around (row, column). */
function disk(row: number, column: number, radius: number): number[] {
  const pixels: number[] = [];
  for (let r = row - radius; r <= row + radius; r++) {
    for (let c = column - radius; c <= column + radius; c++) {
      if ((r - row) ** 2 + (c - column) ** 2 <= radius ** 2) pixels.push(r * COLUMNS + c);
    }
  }
  return pixels;
}

/** Patient position of voxel (slice, pixel) for the axial geometry above. */
export function patientPosition(volume: CtVolume, slice: number, pixel: number): Vector3 {
  const row = Math.floor(pixel / volume.columns);
  const column = pixel % volume.columns;
  const [x, y, z] = volume.imagePositionPatient[slice]!;
  return [x + column * volume.pixelSpacing[1], y + row * volume.pixelSpacing[0], z];
}

function centroid(volume: CtVolume, mask: Finding["mask"]): [number, number, number] {
  const sum = [0, 0, 0];
  let n = 0;
  for (const m of mask) {
    for (const p of m.pixels) {
      const pos = patientPosition(volume, m.slice, p);
      sum[0]! += pos[0];
      sum[1]! += pos[1];
      sum[2]! += pos[2];
      n++;
    }
  }
  return [sum[0]! / n, sum[1]! / n, sum[2]! / n].map((v) => Math.round(v * 1000) / 1000) as [number, number, number];
}

export function twoFindings(volume: CtVolume): Finding[] {
  const mask1 = [
    { slice: 2, pixels: disk(20, 30, 2) },
    { slice: 3, pixels: disk(20, 30, 4) },
    { slice: 4, pixels: disk(20, 30, 3) },
  ];
  const mask2 = [
    { slice: 6, pixels: disk(44, 40, 2) },
    { slice: 5, pixels: disk(44, 40, 3) },
  ];
  return [
    {
      trackingId: "Nodule 1",
      trackingUid: uid("tracking", 1),
      findingCode: NODULE,
      findingSiteCode: LUNG,
      centroidPatientMm: centroid(volume, mask1),
      mask: mask1,
      longestDiameterMm: longAxis(mask1, volume).lengthMm, // as the detector measures it
      volumeMm3: 68.6,
      probability: 0.91,
    },
    {
      trackingId: "Nodule 2",
      trackingUid: uid("tracking", 2),
      findingCode: NODULE,
      findingSiteCode: LUNG,
      centroidPatientMm: centroid(volume, mask2),
      mask: mask2,
      longestDiameterMm: longAxis(mask2, volume).lengthMm,
      volumeMm3: 23.3,
      probability: 0.62,
    },
  ];
}

export const ALGORITHM: AlgorithmIdentity = {
  name: "ct-enhance lung nodule detection",
  version: "0.1.0",
  modelId: "nodule-det-test",
  modelVersion: "1.0.0",
  modelSha256: "5f".repeat(32),
  manufacturer: "ct-enhance",
};

export const CONTENT_DATE = new Date("2024-01-02T10:30:00.000Z");

export const SR_IDENTITY = {
  seriesInstanceUID: uid("sr-series"),
  sopInstanceUID: uid("sr-instance"),
  seriesNumber: 9001,
  contentDate: CONTENT_DATE,
};

export const SEG_IDENTITY = {
  seriesInstanceUID: uid("seg-series"),
  sopInstanceUID: uid("seg-instance"),
  seriesNumber: 9002,
  contentDate: CONTENT_DATE,
};

/**
 * Warnings of Debian bookworm's dciodvfy (dicom3tools 2022-06) about attributes the standard added after it, each
 * with where the standard has it. Only these are left out of `warnings`; `output` keeps every line.
 */
export const DCIODVFY_OLDER_THAN_STANDARD: readonly RegExp[] = [
  // PS3.3 C.12.1 (Table C.12-1): Contributing Equipment Sequence > Device UID (0018,1002), type 3, "unique
  // identifier of the contributing equipment", which IHE AIR asks of the algorithm's item.
  /^Warning - <\/ContributingEquipmentSequence\(0018,a001\)\[\d+\]\/DeviceUID\(0018,1002\)> - Attribute is not present in standard DICOM IOD$/,
];

/** Runs dciodvfy on a file and returns its Error lines and its Warning lines but for DCIODVFY_OLDER_THAN_STANDARD. */
export function dciodvfy(file: string): { errors: string[]; warnings: string[]; output: string } {
  const run = spawnSync("dciodvfy", ["-new", file], { encoding: "utf8" });
  const output = `${run.stdout}${run.stderr}`;
  const lines = output.split("\n");
  return {
    errors: lines.filter((l) => l.startsWith("Error")),
    warnings: lines.filter((l) => l.startsWith("Warning") && !DCIODVFY_OLDER_THAN_STANDARD.some((gap) => gap.test(l))),
    output,
  };
}

/** Reads a Part-10 file back into a dcmjs naturalized dataset. */
export function readNaturalized(bytes: Uint8Array): Record<string, any> {
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  return data.DicomMetaDictionary.naturalizeDataset(data.DicomMessage.readFile(buffer).dict) as Record<string, any>;
}

/** Writes bytes to a fresh temporary file and returns its path. */
export function tempFile(name: string, bytes: Uint8Array): string {
  const dir = mkdtempSync(path.join(tmpdir(), "ct-enhance-sr-"));
  const file = path.join(dir, name);
  writeFileSync(file, bytes);
  return file;
}

/**
 * A dataset as src/dicom/volume.ts gets its headers: encoded, then parsed back by dcmjs, whose PN values carry
 * accessor methods (structuredClone refuses them).
 */
export function dcmjsParsed(dataset: Record<string, unknown>): Record<string, any> {
  const meta = {
    TransferSyntaxUID: "1.2.840.10008.1.2.1",
    MediaStorageSOPClassUID: dataset.SOPClassUID,
    MediaStorageSOPInstanceUID: dataset.SOPInstanceUID,
  };
  const dict = new data.DicomDict(data.DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = data.DicomMetaDictionary.denaturalizeDataset(dataset);
  return readNaturalized(new Uint8Array(dict.write()));
}
