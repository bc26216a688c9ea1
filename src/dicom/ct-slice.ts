/**
 * One CT instance as it arrives (Part-10 bytes): its header parsed up to PixelData, checked to be a single-frame,
 * 16-bit, single-sample CT Image in an uncompressed little-endian syntax, and a view of its stored pixel values
 * (found in place in the received bytes when the layout is the usual one), converted to HU on request. Every refusal
 * is a VolumeError naming the instance and what is wrong with it. volume.ts makes a volume of such slices.
 */
import { data } from "dcmjs";
import type { NaturalizedDataset, Vector3 } from "./ct-volume.js";
import { silenceDcmjsVrGuesses } from "./dcmjs-log.js";
import { VolumeError } from "./dicom-errors.js";
import { SopClass } from "./part10.js";

// An Implicit VR instance would print "Invalid vr type xs/ox" once per file (see dcmjs-log.ts); refusals are ours.
silenceDcmjsVrGuesses();

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

const TAG_PIXEL_DATA = "7FE00010";

/** A transfer syntax's name when it is one an administrator is likely to meet, else undefined. */
export function transferSyntaxName(uid: string): string | undefined {
  return NATIVE_TRANSFER_SYNTAXES[uid] ?? UNSUPPORTED_TRANSFER_SYNTAXES[uid];
}

/**
 * Syntaxes the DCMTK in Orthanc's Debian package decodes, so WADO-RS can transcode them (JPEG, JPEG-LS, RLE, the
 * native ones); a series stored in another (JPEG 2000 without a decoding plugin) cannot be sent uncompressed.
 */
export const DCMTK_DECODABLE_TRANSFER_SYNTAXES: ReadonlySet<string> = new Set([
  ...Object.keys(NATIVE_TRANSFER_SYNTAXES), "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
  "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.5",
]);

const ENHANCED_CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2.1";

/** SOP classes that reach a CT node by mistake, named in the refusal (PS3.4 B.5). */
const OTHER_SOP_CLASSES: Record<string, string> = {
  "1.2.840.10008.5.1.4.1.1.4": "MR Image Storage",
  "1.2.840.10008.5.1.4.1.1.4.1": "Enhanced MR Image Storage",
  "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image Storage",
  "1.2.840.10008.5.1.4.1.1.128": "PET Image Storage",
  "1.2.840.10008.5.1.4.1.1.1": "Computed Radiography Image Storage",
  "1.2.840.10008.5.1.4.1.1.1.1": "Digital X-Ray Image Storage",
  "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation Storage",
  "1.2.840.10008.5.1.4.1.1.88.34": "Comprehensive 3D SR Storage",
  "1.2.840.10008.5.1.4.1.1.481.3": "RT Structure Set Storage",
};

/** One parsed instance, before sorting. */
export interface ParsedSlice {
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
  /** AcquisitionNumber as written (absent: undefined): two acquisitions interleaved in one series are refused. */
  acquisitionNumber: string | undefined;
  /** ImageType includes LOCALIZER: a scout, left out of the volume. */
  localizer: boolean;
  /** Position along the series normal, filled in after the orientation check. */
  along: number;
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) {
    return bytes.buffer;
  }
  return bytes.slice().buffer;
}

function numbers(header: NaturalizedDataset, keyword: string, count: number, label: string): number[] {
  const raw = header[keyword];
  const entries: unknown[] = Array.isArray(raw) ? raw : raw === undefined || raw === null || raw === "" ? [] : [raw];
  // An empty or unparsable DS value reads as null, which Number() would turn into 0: a position or spacing of 0 mm.
  const values = entries.map((v) => (v === null || v === "" ? Number.NaN : Number(v)));
  if (values.length !== count || values.some((v) => !Number.isFinite(v))) {
    const shown = raw === undefined || raw === null || raw === "" ? "is missing" : `is ${JSON.stringify(raw)}`;
    throw new VolumeError(`${label}: ${keyword} ${shown}; ${count} number(s) are required`);
  }
  return values;
}

function text(header: NaturalizedDataset, keyword: string, label: string): string {
  const value = header[keyword];
  if (typeof value !== "string" || value === "") throw new VolumeError(`${label}: ${keyword} is missing`);
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

/** ImageType's values, upper case ("ORIGINAL\\PRIMARY\\LOCALIZER" as a list). */
export function imageTypeOf(header: NaturalizedDataset): string[] {
  const raw = header.ImageType;
  const values = Array.isArray(raw) ? raw : typeof raw === "string" ? raw.split("\\") : [];
  return values.map((v) => String(v).trim().toUpperCase());
}

/** PixelSpacing, both numbers positive: a spacing of 0 mm makes every distance, volume and slab of the probe 0. */
function pixelSpacing(header: NaturalizedDataset, label: string): [number, number] {
  const spacing = numbers(header, "PixelSpacing", 2, label) as [number, number];
  if (!(spacing[0] > 0 && spacing[1] > 0)) {
    throw new VolumeError(`${label}: PixelSpacing is ${JSON.stringify(spacing)}; two positive numbers (mm) are required`);
  }
  return spacing;
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

/**
 * Where PixelData's value ends as its element header declares it: the first 7FE0,0010 tag after the preamble (with
 * an OW or OB VR when explicit). undefined for an undefined length or when there is none.
 */
function declaredPixelDataEnd(bytes: Uint8Array, explicitVr: boolean): number | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 132; at + 12 <= bytes.length; at += 2) {
    if (bytes[at] !== 0xe0 || bytes[at + 1] !== 0x7f || bytes[at + 2] !== 0x10 || bytes[at + 3] !== 0x00) continue;
    if (!explicitVr) {
      const length = view.getUint32(at + 4, true);
      return length === 0xffffffff ? undefined : at + 8 + length;
    }
    const vr = String.fromCharCode(bytes[at + 4]!, bytes[at + 5]!);
    if (vr !== "OW" && vr !== "OB") continue;
    const length = view.getUint32(at + 8, true);
    return length === 0xffffffff ? undefined : at + 12 + length;
  }
  return undefined;
}

/** The stored values as 16-bit integers, without a copy when the bytes are aligned. */
function storedValues(bytes: Uint8Array, offset: number, voxels: number, signed: boolean): Int16Array | Uint16Array {
  const Kind = signed ? Int16Array : Uint16Array;
  const at = bytes.byteOffset + offset;
  if (at % 2 === 0) return new Kind(bytes.buffer as ArrayBuffer, at, voxels);
  return new Kind(bytes.slice(offset, offset + voxels * 2).buffer);
}

/** Parses one Part-10 instance: its header, and a view of its stored pixel values. */
export function parseSlice(bytes: Uint8Array, arrival: number): ParsedSlice {
  let dicom: data.DicomDict;
  try {
    dicom = data.DicomMessage.readFile(toArrayBuffer(bytes), { untilTag: TAG_PIXEL_DATA, includeUntilTagValue: false });
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new VolumeError(`instance #${arrival + 1} received is not a readable DICOM Part-10 file: ${why}`);
  }
  const hasPixelData = TAG_PIXEL_DATA in dicom.dict;
  delete dicom.dict[TAG_PIXEL_DATA];
  const header = data.DicomMetaDictionary.naturalizeDataset(dicom.dict) as NaturalizedDataset;
  const label = describeSlice(header, arrival);

  const transferSyntax = dicom.meta["00020010"]?.Value?.[0];
  if (typeof transferSyntax !== "string" || !(transferSyntax in NATIVE_TRANSFER_SYNTAXES)) {
    const known = typeof transferSyntax === "string" ? UNSUPPORTED_TRANSFER_SYNTAXES[transferSyntax] : "none";
    const name = known ?? "a compressed transfer syntax";
    throw new VolumeError(
      `${label} is encoded with transfer syntax ${String(transferSyntax)} (${name}); only uncompressed little-endian ` +
        `pixel data can be read. Ask WADO-RS for transfer-syntax=1.2.840.10008.1.2.1 so the PACS transcodes it.`,
    );
  }

  const sopClassUID = text(header, "SOPClassUID", label);
  const frames = Number(header.NumberOfFrames ?? 1);
  if (sopClassUID === ENHANCED_CT_IMAGE) {
    throw new VolumeError(`${label} is an Enhanced CT Image (multi-frame, ${frames} frames); ct-enhance assembles CT Image ` +
      `Storage (${SopClass.CtImage}), one slice per instance: ask the PACS or scanner for the classic single-frame series`);
  }
  if (sopClassUID !== SopClass.CtImage) {
    const name = OTHER_SOP_CLASSES[sopClassUID];
    throw new VolumeError(`${label} has SOPClassUID ${sopClassUID}${name ? ` (${name})` : ""}; only CT Image Storage ` +
      `(${SopClass.CtImage}) is assembled`);
  }
  if (frames > 1) {
    throw new VolumeError(`${label} is a multi-frame image (${frames} frames); one slice per instance is expected`);
  }
  const samples = Number(header.SamplesPerPixel ?? 1);
  if (samples !== 1) throw new VolumeError(`${label} has SamplesPerPixel ${samples}; a CT slice has 1`);

  const [rows, columns] = [numbers(header, "Rows", 1, label)[0]!, numbers(header, "Columns", 1, label)[0]!];
  const bitsAllocated = numbers(header, "BitsAllocated", 1, label)[0]!;
  if (bitsAllocated !== 16) {
    throw new VolumeError(`${label} has BitsAllocated ${bitsAllocated}; CT slices with 16 are supported`);
  }
  const bitsStored = numbers(header, "BitsStored", 1, label)[0]!;
  const highBit = Number(header.HighBit ?? bitsStored - 1);
  if (bitsStored < 1 || bitsStored > 16 || highBit !== bitsStored - 1) {
    throw new VolumeError(`${label} has BitsStored ${bitsStored} and HighBit ${highBit}; HighBit = BitsStored - 1 is required`);
  }
  const signed = numbers(header, "PixelRepresentation", 1, label)[0] === 1;
  const slope = numbers(header, "RescaleSlope", 1, label)[0]!;
  const intercept = numbers(header, "RescaleIntercept", 1, label)[0]!;
  if (slope === 0) throw new VolumeError(`${label} has RescaleSlope 0`);

  const voxels = rows * columns;
  if (!hasPixelData) throw new VolumeError(`${label} has no PixelData`);
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
    pixelSpacing: pixelSpacing(header, label),
    orientation,
    position: numbers(header, "ImagePositionPatient", 3, label) as Vector3,
    slope,
    intercept,
    bitsStored,
    signed,
    stored,
    slot: -1,
    acquisitionNumber: header.AcquisitionNumber === undefined || header.AcquisitionNumber === null || header.AcquisitionNumber === ""
      ? undefined : String(header.AcquisitionNumber),
    localizer: imageTypeOf(header).includes("LOCALIZER"),
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
  const explicitVr = transferSyntax !== "1.2.840.10008.1.2";
  const offset = deflated ? undefined : pixelValueOffset(bytes, explicitVr, voxels * 2);
  if (offset !== undefined) return storedValues(bytes, offset, voxels, signed);
  // dcmjs fills a value cut short by the end of the file with zeros: a truncated slice would pass as a darker one.
  const end = deflated ? undefined : declaredPixelDataEnd(bytes, explicitVr);
  if (end !== undefined && end > bytes.length) {
    throw new VolumeError(`${label} is cut short: its PixelData runs to byte ${end} but the file ends at byte ${bytes.length}`);
  }
  let element: data.DicomDict["dict"][string] | undefined;
  try {
    element = data.DicomMessage.readFile(toArrayBuffer(bytes)).dict[TAG_PIXEL_DATA];
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new VolumeError(`${label}: its PixelData cannot be read: ${why}`);
  }
  const pixelBuffer = element?.Value?.[0];
  if (!(pixelBuffer instanceof ArrayBuffer)) throw new VolumeError(`${label} has no PixelData`);
  if ((element?.Value?.length ?? 0) > 1 || pixelBuffer.byteLength < voxels * 2) {
    throw new VolumeError(`${label} has ${pixelBuffer.byteLength} bytes of PixelData where ${voxels * 2} are expected`);
  }
  return storedValues(new Uint8Array(pixelBuffer), 0, voxels, signed);
}

/** Stored value -> HU for one slice, into `target` (rows x columns floats). */
export function storedToHu(slice: ParsedSlice, target: Float32Array): void {
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
