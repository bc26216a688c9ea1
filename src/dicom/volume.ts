/**
 * Volume assembly: the instances of one CT series (Part-10 bytes, in any order) become one HU volume, slices sorted
 * along the slice normal (row cosines x column cosines), with the checks that make a stack of slices a volume:
 * one orientation, one matrix size and pixel spacing, one frame of reference, no duplicate positions, uniform
 * spacing, enough slices. Every refusal is a StageError(volume, not retryable) that names the slice and what is
 * wrong with it, in words a PACS administrator can act on.
 *
 * Memory and time: each instance is parsed as it arrives, header only (dcmjs stops at PixelData), and its pixels are
 * converted to HU straight from the received bytes into the next free slice of the float32 volume, while the next
 * instance is still on the wire; the received bytes are dropped at once. With `expectedSlices` (the count Orthanc
 * reports) the volume is allocated once at its final size. After the checks, the slices are put in position order
 * in place (one spare slice), so the series is never held twice.
 */
import { data } from "dcmjs";
import { turnTaker } from "../event-loop.js";
import { Stage, StageError } from "../pipeline/stage-error.js";
import type { CtVolume, NaturalizedDataset, SourceSliceReference, Vector3 } from "./ct-volume.js";

export interface VolumeAssemblyOptions {
  /** How many instances to expect (e.g. Orthanc's count): the volume is allocated at that size from the start. */
  expectedSlices?: number;
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
  /** Stored values, a view of the received bytes; dropped once converted to HU. */
  stored: Int16Array | Uint16Array | undefined;
  /** Where this slice's HU went in arrival order; -1 while its stored values wait to be converted. */
  slot: number;
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

/**
 * Where the pixel values of a native 16-bit slice sit in its Part-10 bytes. PixelData is the last element of an
 * image (nothing above 7FE0,0010 but padding or signatures): check that the element header just before the last
 * `valueBytes` bytes is PixelData with that length. undefined when it is not (then the whole file is parsed).
 */
function pixelValueOffset(bytes: Uint8Array, explicitVr: boolean, valueBytes: number): number | undefined {
  const start = bytes.length - valueBytes;
  const header = start - (explicitVr ? 12 : 8);
  if (header < 132) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint16(header, true) !== 0x7fe0 || view.getUint16(header + 2, true) !== 0x0010) return undefined;
  if (!explicitVr) return view.getUint32(header + 4, true) === valueBytes ? start : undefined;
  const vr = String.fromCharCode(bytes[header + 4]!, bytes[header + 5]!);
  if ((vr !== "OW" && vr !== "OB") || view.getUint32(header + 8, true) !== valueBytes) return undefined;
  return start;
}

/** The stored values as 16-bit integers, without a copy when the bytes are aligned. */
function storedValues(bytes: Uint8Array, offset: number, voxels: number, signed: boolean): Int16Array | Uint16Array {
  const Kind = signed ? Int16Array : Uint16Array;
  const at = bytes.byteOffset + offset;
  if (at % 2 === 0) return new Kind(bytes.buffer as ArrayBuffer, at, voxels);
  return new Kind(bytes.slice(offset, offset + voxels * 2).buffer);
}

/** Parses one Part-10 instance: its header, and a view of its stored pixel values. */
function parseSlice(bytes: Uint8Array, arrival: number): ParsedSlice {
  let dicom: data.DicomDict;
  try {
    dicom = data.DicomMessage.readFile(toArrayBuffer(bytes), { untilTag: TAG_PIXEL_DATA, includeUntilTagValue: false });
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw refuse(`instance #${arrival + 1} received is not a readable DICOM Part-10 file: ${why}`);
  }
  const hasPixelData = TAG_PIXEL_DATA in dicom.dict;
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
  if (!hasPixelData) throw refuse(`${label} has no PixelData`);
  const stored = sliceStoredValues(bytes, transferSyntax, voxels, signed && bitsStored === 16, label);

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
    slot: -1,
    along: 0,
  };
}

/**
 * The slice's stored values: found in place for the usual layout (PixelData last, exact length); otherwise, and for
 * the deflated syntax, by parsing the whole file again with its pixels.
 */
function sliceStoredValues(
  bytes: Uint8Array,
  transferSyntax: string,
  voxels: number,
  signed: boolean,
  label: string,
): Int16Array | Uint16Array {
  const deflated = transferSyntax === "1.2.840.10008.1.2.1.99";
  const offset = deflated ? undefined : pixelValueOffset(bytes, transferSyntax !== "1.2.840.10008.1.2", voxels * 2);
  if (offset !== undefined) return storedValues(bytes, offset, voxels, signed);
  const element = data.DicomMessage.readFile(toArrayBuffer(bytes)).dict[TAG_PIXEL_DATA];
  const pixelBuffer = element?.Value?.[0];
  if (!(pixelBuffer instanceof ArrayBuffer)) throw refuse(`${label} has no PixelData`);
  if ((element?.Value?.length ?? 0) > 1 || pixelBuffer.byteLength < voxels * 2) {
    throw refuse(`${label} has ${pixelBuffer.byteLength} bytes of PixelData where ${voxels * 2} are expected`);
  }
  return storedValues(new Uint8Array(pixelBuffer), 0, voxels, signed);
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
    if (slice.signed) for (let i = 0; i < stored.length; i += 1) target[i] = (stored[i]! << shift) >> shift;
    else for (let i = 0; i < stored.length; i += 1) target[i] = stored[i]! & mask;
  } else {
    target.set(stored); // native int16/uint16 -> float32, faster than any JS loop
  }
  const { slope, intercept } = slice;
  if (slope !== 1) for (let i = 0; i < target.length; i += 1) target[i] = target[i]! * slope;
  if (intercept !== 0) for (let i = 0; i < target.length; i += 1) target[i] = target[i]! + intercept;
}

function allocateVolume(slices: number, plane: number): Float32Array {
  try {
    return new Float32Array(slices * plane);
  } catch (error) {
    const mib = Math.round((slices * plane * 4) / 2 ** 20);
    throw new StageError(Stage.Volume, `cannot allocate ${slices} slices of ${plane} float32 voxels (${mib} MiB)`, true, {
      cause: error,
    });
  }
}

/**
 * The HU slices as they arrive. With an expected count, each slice is converted at once into the next slot of a
 * buffer of that many slices, which becomes the volume; without one (or past it) the stored 16-bit values wait and
 * are converted at the end. Slices whose matrix differs from the first slice's are never converted: the
 * consistency checks refuse the series anyway.
 */
class ArrivalSlices {
  private buffer: Float32Array | undefined;
  private used = 0;
  private plane = 0;

  constructor(private readonly expected: number | undefined) {}

  add(slice: ParsedSlice): void {
    const plane = slice.rows * slice.columns;
    if (this.plane === 0) {
      this.plane = plane;
      if (this.expected !== undefined && this.expected > 0) this.buffer = allocateVolume(this.expected, plane);
    }
    if (!this.buffer || plane !== this.plane || this.used === this.expected) return;
    storedToHu(slice, this.buffer.subarray(this.used * plane, (this.used + 1) * plane));
    slice.stored = undefined;
    slice.slot = this.used;
    this.used += 1;
  }

  /** The volume, slices in the given (position) order. */
  volume(sorted: ParsedSlice[]): Float32Array {
    const plane = this.plane;
    const buffer = this.buffer;
    this.buffer = undefined;
    if (buffer && this.used === sorted.length && buffer.length === sorted.length * plane) {
      return permuteSlices(buffer, plane, sorted.map((s) => s.slot));
    }
    const hu = allocateVolume(sorted.length, plane);
    sorted.forEach((slice, k) => {
      const target = hu.subarray(k * plane, (k + 1) * plane);
      if (slice.slot >= 0) target.set(buffer!.subarray(slice.slot * plane, (slice.slot + 1) * plane));
      else storedToHu(slice, target);
      slice.stored = undefined;
    });
    return hu;
  }
}

/** Reorders slices in place so that slice k becomes what was in slot order[k]: cycle by cycle, one spare slice. */
function permuteSlices(hu: Float32Array, plane: number, order: number[]): Float32Array {
  const spare = new Float32Array(plane);
  const placed = new Uint8Array(order.length);
  for (let start = 0; start < order.length; start += 1) {
    if (placed[start] || order[start] === start) continue;
    spare.set(hu.subarray(start * plane, (start + 1) * plane));
    for (let k = start; ;) {
      placed[k] = 1;
      const from = order[k]!;
      if (from === start) {
        hu.set(spare, k * plane);
        break;
      }
      hu.copyWithin(k * plane, from * plane, (from + 1) * plane);
      k = from;
    }
  }
  return hu;
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
  const arrived = new ArrivalSlices(options.expectedSlices);
  const takeTurn = turnTaker();
  for await (const bytes of instances) {
    const slice = parseSlice(bytes, slices.length);
    arrived.add(slice);
    slices.push(slice);
    await takeTurn();
  }

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
  const hu = arrived.volume(slices);

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
