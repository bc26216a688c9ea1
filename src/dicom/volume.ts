/**
 * Volume assembly: the instances of one CT series (Part-10 bytes, in any order) become one HU volume, slices sorted
 * along the slice normal (row cosines x column cosines), with the checks that make a stack of slices a volume:
 * one orientation, one matrix size and pixel spacing, one frame of reference, no duplicate positions, uniform
 * spacing, enough slices. Every refusal is a StageError(volume, not retryable) that names the slice and what is
 * wrong with it, in words a PACS administrator can act on.
 *
 * Memory: each instance is parsed as it arrives and only its header (without PixelData) and its stored pixel values
 * (2 bytes a voxel) are kept; the encoded bytes are dropped at once. The float32 HU volume is allocated after the
 * last slice, then filled slice by slice while the stored values are released.
 */
import { data } from "dcmjs";
import { Stage, StageError } from "../pipeline/stage-error.js";
import type { CtVolume, NaturalizedDataset, SourceSliceReference, Vector3 } from "./ct-volume.js";

export interface VolumeAssemblyOptions {
  /** Fewer slices than this is not a volume (a scout, a partial series). Default 10. */
  minSlices?: number;
  /** Largest difference allowed between two slices' direction cosines. Default 1e-3 (about 0.06 degrees). */
  orientationTolerance?: number;
  /** A gap may differ from the series spacing by max(relative x spacing, absoluteMm). Default 1% and 0.01 mm. */
  spacingTolerance?: { relative: number; absoluteMm: number };
}

export const DEFAULT_MIN_SLICES = 10;

/** Transfer syntaxes whose pixel data is stored uncompressed (dcmjs inflates the deflated one). */
const NATIVE_TRANSFER_SYNTAXES: Record<string, string> = {
  "1.2.840.10008.1.2": "Implicit VR Little Endian",
  "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
  "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
};

/** Names of the syntaxes an administrator is likely to meet that we cannot read, for the refusal message. */
const UNSUPPORTED_TRANSFER_SYNTAXES: Record<string, string> = {
  "1.2.840.10008.1.2.2": "Explicit VR Big Endian (retired)",
  "1.2.840.10008.1.2.4.50": "JPEG Baseline",
  "1.2.840.10008.1.2.4.51": "JPEG Extended",
  "1.2.840.10008.1.2.4.57": "JPEG Lossless",
  "1.2.840.10008.1.2.4.70": "JPEG Lossless SV1",
  "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
  "1.2.840.10008.1.2.4.81": "JPEG-LS Near-Lossless",
  "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless",
  "1.2.840.10008.1.2.4.91": "JPEG 2000",
  "1.2.840.10008.1.2.5": "RLE Lossless",
};

const CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2";
const TAG_PIXEL_DATA = "7FE00010";

/** One parsed instance, before sorting. */
interface ParsedSlice {
  arrival: number;
  header: NaturalizedDataset;
  label: string;
  sopClassUID: string;
  sopInstanceUID: string;
  studyInstanceUID: string;
  seriesInstanceUID: string;
  frameOfReferenceUID: string;
  rows: number;
  columns: number;
  pixelSpacing: [number, number];
  orientation: [number, number, number, number, number, number];
  position: Vector3;
  slope: number;
  intercept: number;
  bitsStored: number;
  signed: boolean;
  /** Stored values; released once converted to HU. */
  stored: Int16Array | Uint16Array | undefined;
  /** Position along the series normal, filled in after the orientation check. */
  along: number;
}

function refuse(message: string): StageError {
  return new StageError(Stage.Volume, message, false);
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) {
    return bytes.buffer;
  }
  return bytes.slice().buffer;
}

function numbers(header: NaturalizedDataset, keyword: string, count: number, label: string): number[] {
  const raw = header[keyword];
  const values = (Array.isArray(raw) ? raw : raw === undefined || raw === null || raw === "" ? [] : [raw]).map(Number);
  if (values.length !== count || values.some((v) => !Number.isFinite(v))) {
    const shown = raw === undefined || raw === null || raw === "" ? "is missing" : `is ${JSON.stringify(raw)}`;
    throw refuse(`${label}: ${keyword} ${shown}; ${count} number(s) are required`);
  }
  return values;
}

function text(header: NaturalizedDataset, keyword: string, label: string): string {
  const value = header[keyword];
  if (typeof value !== "string" || value === "") throw refuse(`${label}: ${keyword} is missing`);
  return value;
}

function describeSlice(header: NaturalizedDataset, arrival: number): string {
  const known: string[] = [];
  const instanceNumber = header.InstanceNumber;
  if (typeof instanceNumber === "number" || (typeof instanceNumber === "string" && instanceNumber !== "")) {
    known.push(`InstanceNumber ${instanceNumber}`);
  }
  if (typeof header.SOPInstanceUID === "string") known.push(`SOPInstanceUID ${header.SOPInstanceUID}`);
  return `instance #${arrival + 1} received${known.length ? ` (${known.join(", ")})` : ""}`;
}

/** Parses one Part-10 instance; keeps its header and stored pixel values, nothing else. */
function parseSlice(bytes: Uint8Array, arrival: number): ParsedSlice {
  let dicom: data.DicomDict;
  try {
    dicom = data.DicomMessage.readFile(toArrayBuffer(bytes));
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw refuse(`instance #${arrival + 1} received is not a readable DICOM Part-10 file: ${why}`);
  }
  const pixelElement = dicom.dict[TAG_PIXEL_DATA];
  delete dicom.dict[TAG_PIXEL_DATA];
  const header = data.DicomMetaDictionary.naturalizeDataset(dicom.dict) as NaturalizedDataset;
  const label = describeSlice(header, arrival);

  const transferSyntax = dicom.meta["00020010"]?.Value?.[0];
  if (typeof transferSyntax !== "string" || !(transferSyntax in NATIVE_TRANSFER_SYNTAXES)) {
    const known = typeof transferSyntax === "string" ? UNSUPPORTED_TRANSFER_SYNTAXES[transferSyntax] : "none";
    const name = known ?? "a compressed transfer syntax";
    throw refuse(
      `${label} is encoded with transfer syntax ${String(transferSyntax)} (${name}); only uncompressed little-endian ` +
        `pixel data can be read. Ask WADO-RS for transfer-syntax=1.2.840.10008.1.2.1 so the PACS transcodes it.`,
    );
  }

  const sopClassUID = text(header, "SOPClassUID", label);
  if (sopClassUID !== CT_IMAGE_STORAGE) {
    throw refuse(`${label} has SOPClassUID ${sopClassUID}; only CT Image Storage (${CT_IMAGE_STORAGE}) is assembled`);
  }
  const frames = Number(header.NumberOfFrames ?? 1);
  if (frames > 1) {
    throw refuse(`${label} is a multi-frame image (${frames} frames); one slice per instance is expected`);
  }
  const samples = Number(header.SamplesPerPixel ?? 1);
  if (samples !== 1) throw refuse(`${label} has SamplesPerPixel ${samples}; a CT slice has 1`);

  const [rows, columns] = [numbers(header, "Rows", 1, label)[0]!, numbers(header, "Columns", 1, label)[0]!];
  const bitsAllocated = numbers(header, "BitsAllocated", 1, label)[0]!;
  if (bitsAllocated !== 16) {
    throw refuse(`${label} has BitsAllocated ${bitsAllocated}; CT slices with 16 are supported`);
  }
  const bitsStored = numbers(header, "BitsStored", 1, label)[0]!;
  const highBit = Number(header.HighBit ?? bitsStored - 1);
  if (bitsStored < 1 || bitsStored > 16 || highBit !== bitsStored - 1) {
    throw refuse(`${label} has BitsStored ${bitsStored} and HighBit ${highBit}; HighBit = BitsStored - 1 is required`);
  }
  const signed = numbers(header, "PixelRepresentation", 1, label)[0] === 1;
  const slope = numbers(header, "RescaleSlope", 1, label)[0]!;
  const intercept = numbers(header, "RescaleIntercept", 1, label)[0]!;
  if (slope === 0) throw refuse(`${label} has RescaleSlope 0`);

  const voxels = rows * columns;
  const pixelBuffer = pixelElement?.Value?.[0];
  if (!(pixelBuffer instanceof ArrayBuffer)) throw refuse(`${label} has no PixelData`);
  if ((pixelElement?.Value?.length ?? 0) > 1 || pixelBuffer.byteLength < voxels * 2) {
    const expected = `${rows}x${columns}x2 = ${voxels * 2}`;
    throw refuse(`${label} has ${pixelBuffer.byteLength} bytes of PixelData where ${expected} are expected`);
  }
  const exact = pixelBuffer.byteLength === voxels * 2 ? pixelBuffer : pixelBuffer.slice(0, voxels * 2);
  const stored = signed && bitsStored === 16 ? new Int16Array(exact) : new Uint16Array(exact);

  const orientation = numbers(header, "ImageOrientationPatient", 6, label) as ParsedSlice["orientation"];
  return {
    arrival,
    header,
    label,
    sopClassUID,
    sopInstanceUID: text(header, "SOPInstanceUID", label),
    studyInstanceUID: text(header, "StudyInstanceUID", label),
    seriesInstanceUID: text(header, "SeriesInstanceUID", label),
    frameOfReferenceUID: text(header, "FrameOfReferenceUID", label),
    rows,
    columns,
    pixelSpacing: numbers(header, "PixelSpacing", 2, label) as [number, number],
    orientation,
    position: numbers(header, "ImagePositionPatient", 3, label) as Vector3,
    slope,
    intercept,
    bitsStored,
    signed,
    stored,
    along: 0,
  };
}

/** Groups values that agree within a predicate; the largest group is "the series". */
function majority<T>(slices: ParsedSlice[], valueOf: (s: ParsedSlice) => T, same: (a: T, b: T) => boolean) {
  const groups: { value: T; members: ParsedSlice[] }[] = [];
  for (const slice of slices) {
    const value = valueOf(slice);
    const group = groups.find((g) => same(g.value, value));
    if (group) group.members.push(slice);
    else groups.push({ value, members: [slice] });
  }
  groups.sort((a, b) => b.members.length - a.members.length);
  const [main, ...others] = groups;
  return { main: main!, outliers: others.flatMap((g) => g.members) };
}

function checkConsistent<T>(
  slices: ParsedSlice[],
  what: string,
  valueOf: (s: ParsedSlice) => T,
  same: (a: T, b: T) => boolean,
  show: (v: T) => string,
): void {
  const { main, outliers } = majority(slices, valueOf, same);
  if (outliers.length === 0) return;
  const first = outliers[0]!;
  const more = outliers.length > 1 ? ` (and ${outliers.length - 1} more slice(s) differ)` : "";
  throw refuse(
    `${first.label} has ${what} ${show(valueOf(first))} but the other ${main.members.length} slice(s) of the series ` +
      `have ${show(main.value)}${more}; the series mixes images that do not form one volume`,
  );
}

const fmt = (v: number, digits = 4) => Number(v.toFixed(digits)).toString();
const showVector = (v: readonly number[]) => `[${v.map((x) => fmt(x)).join(", ")}]`;

function cross(a: Vector3, b: Vector3): Vector3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

const dot = (a: Vector3, b: Vector3) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Stored value -> HU for one slice, into `target` (rows x columns floats). */
function storedToHu(slice: ParsedSlice, target: Float32Array): void {
  const stored = slice.stored!;
  if (slice.bitsStored < 16) {
    // Bits above the high bit may hold anything (old overlays): mask, or sign-extend from the high bit.
    const shift = 32 - slice.bitsStored;
    const mask = (1 << slice.bitsStored) - 1;
    const clean = new Int32Array(stored.length);
    if (slice.signed) for (let i = 0; i < stored.length; i += 1) clean[i] = (stored[i]! << shift) >> shift;
    else for (let i = 0; i < stored.length; i += 1) clean[i] = stored[i]! & mask;
    target.set(clean);
  } else {
    target.set(stored); // native int16/uint16 -> float32 conversion
  }
  const { slope, intercept } = slice;
  if (slope === 1 && intercept === 0) return;
  for (let i = 0; i < target.length; i += 1) target[i] = target[i]! * slope + intercept;
}

/**
 * Assembles the instances of one CT series into a volume in Hounsfield units. Instances may arrive in any order
 * (an async iterable streams them from WADO-RS). Throws StageError(volume, retryable false) naming the slice.
 */
export async function assembleVolume(
  instances: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  options: VolumeAssemblyOptions = {},
): Promise<CtVolume> {
  const minSlices = options.minSlices ?? DEFAULT_MIN_SLICES;
  const orientationTolerance = options.orientationTolerance ?? 1e-3;
  const spacingTolerance = options.spacingTolerance ?? { relative: 0.01, absoluteMm: 0.01 };

  const slices: ParsedSlice[] = [];
  for await (const bytes of instances) slices.push(parseSlice(bytes, slices.length));

  const needed = Math.max(minSlices, 2);
  if (slices.length < needed) {
    throw refuse(`the series has ${slices.length} slice(s); at least ${needed} are needed to form a volume`);
  }

  checkConsistent(slices, "StudyInstanceUID", (s) => s.studyInstanceUID, (a, b) => a === b, String);
  checkConsistent(slices, "SeriesInstanceUID", (s) => s.seriesInstanceUID, (a, b) => a === b, String);
  checkConsistent(slices, "FrameOfReferenceUID", (s) => s.frameOfReferenceUID, (a, b) => a === b, String);
  checkConsistent(
    slices,
    "a matrix of",
    (s) => [s.rows, s.columns] as const,
    (a, b) => a[0] === b[0] && a[1] === b[1],
    (v) => `${v[0]} rows x ${v[1]} columns`,
  );
  checkConsistent(
    slices,
    "PixelSpacing",
    (s) => s.pixelSpacing,
    (a, b) => Math.abs(a[0] - b[0]) <= 1e-4 * Math.max(a[0], 1) && Math.abs(a[1] - b[1]) <= 1e-4 * Math.max(a[1], 1),
    (v) => `${showVector(v)} mm`,
  );
  checkConsistent(
    slices,
    "ImageOrientationPatient",
    (s) => s.orientation,
    (a, b) => a.every((x, i) => Math.abs(x - b[i]!) <= orientationTolerance),
    showVector,
  );

  const reference = slices[0]!;
  const rowCosines: Vector3 = [reference.orientation[0], reference.orientation[1], reference.orientation[2]];
  const columnCosines: Vector3 = [reference.orientation[3], reference.orientation[4], reference.orientation[5]];
  const normal = cross(rowCosines, columnCosines);
  const normalLength = Math.hypot(...normal);
  const unitLength = (v: Vector3) => Math.abs(Math.hypot(...v) - 1) <= 0.01;
  if (!unitLength(rowCosines) || !unitLength(columnCosines) || Math.abs(normalLength - 1) > 0.01) {
    throw refuse(
      `ImageOrientationPatient ${showVector(reference.orientation)} is not two perpendicular unit vectors; ` +
        "the slice normal is undefined",
    );
  }
  const unitNormal: Vector3 = [normal[0] / normalLength, normal[1] / normalLength, normal[2] / normalLength];
  for (const slice of slices) slice.along = dot(unitNormal, slice.position);
  slices.sort((a, b) => a.along - b.along);

  const gaps = slices.slice(1).map((s, i) => s.along - slices[i]!.along);
  const spacing = median(gaps);
  const tolerance = Math.max(spacingTolerance.relative * spacing, spacingTolerance.absoluteMm);
  for (let k = 0; k < gaps.length; k += 1) {
    const a = slices[k]!;
    const b = slices[k + 1]!;
    if (gaps[k]! <= spacingTolerance.absoluteMm) {
      throw refuse(
        `slices ${k + 1} and ${k + 2} (in position order) share the position ${fmt(a.along, 3)} mm along ` +
          `the slice normal: ${a.label} and ${b.label} (duplicate instances, or two acquisitions in one series?)`,
      );
    }
  }
  if (spacing <= 0 || !Number.isFinite(spacing)) {
    throw refuse(`the slices have no usable spacing (median gap ${spacing} mm)`);
  }
  const irregular = gaps.map((g, k) => ({ g, k })).filter(({ g }) => Math.abs(g - spacing) > tolerance);
  if (irregular.length > 0) {
    const { g, k } = irregular[0]!;
    const a = slices[k]!;
    const b = slices[k + 1]!;
    let hint = "uneven reconstruction?";
    if (g < spacing) hint = "extra or overlapping slice?";
    else if (Math.round(g / spacing) >= 2) hint = "missing slice?";
    const more = irregular.length > 1 ? `; ${irregular.length - 1} other gap(s) are irregular too` : "";
    throw refuse(
      `slices ${k + 1} and ${k + 2} (in position order: ${a.label} and ${b.label}) are ${fmt(g, 3)} mm ` +
        `apart where the series spacing is ${fmt(spacing, 3)} mm (${hint})${more}`,
    );
  }

  const { rows, columns } = reference;
  const voxelsPerSlice = rows * columns;
  let hu: Float32Array;
  try {
    hu = new Float32Array(slices.length * voxelsPerSlice);
  } catch (error) {
    throw new StageError(
      Stage.Volume,
      `cannot allocate ${slices.length}x${rows}x${columns} float32 voxels ` +
        `(${Math.round((slices.length * voxelsPerSlice * 4) / 2 ** 20)} MiB)`,
      true,
      { cause: error },
    );
  }
  slices.forEach((slice, k) => {
    storedToHu(slice, hu.subarray(k * voxelsPerSlice, (k + 1) * voxelsPerSlice));
    slice.stored = undefined;
  });

  const first = slices[0]!;
  const last = slices[slices.length - 1]!;
  const sourceSlices: SourceSliceReference[] = slices.map((s) => ({
    sopClassUID: s.sopClassUID,
    sopInstanceUID: s.sopInstanceUID,
  }));
  return {
    studyInstanceUID: first.studyInstanceUID,
    seriesInstanceUID: first.seriesInstanceUID,
    frameOfReferenceUID: first.frameOfReferenceUID,
    rows,
    columns,
    slices: slices.length,
    hu,
    pixelSpacing: [...first.pixelSpacing],
    sliceSpacing: (last.along - first.along) / (slices.length - 1),
    imageOrientationPatient: [...reference.orientation],
    imagePositionPatient: slices.map((s) => [...s.position] as Vector3),
    sourceSlices,
    sliceHeaders: slices.map((s) => s.header),
  };
}
