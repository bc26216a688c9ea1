/**
 * Turns the real head CT that Debian's `invesalius-examples` package ships as an InVesalius 3 project
 * (/usr/share/doc/invesalius-examples/examples/Cranium.inv3) into an ordinary original CT series: one CT Image
 * Storage Part-10 file per slice, Explicit VR Little Endian, built module by module after the CT Image IOD (PS3.3
 * A.3) so that dciodvfy reports no errors. The demo uses it where our private test series are not available.
 *
 *   node dist/tools/invesalius-series.js [--inv3 PATH] --out FOLDER
 *
 * What the project holds and how it maps to DICOM (checked by rendering slices of the matrix):
 * - An .inv3 file is a gzip'd tar of one folder holding main.plist (an Apple XML plist) and matrix.dat: raw int16,
 *   little-endian, C order [slice][row][column], values already in HU (air -1024, brain ~30, bone > 700).
 * - Slices run from the skull base (index 0) to above the vertex (index 107), so slice k lies at z = k * spacing_z
 *   in the patient coordinate system (LPS, +z = superior): the head is upright.
 * - InVesalius stores every axial image flipped top to bottom (VTK's lower-left origin; its DICOM reader reverses
 *   the rows): row 0 of the matrix is the posterior edge (the head rest is there), the face is at the last row. We
 *   reverse the rows again, so that with ImageOrientationPatient 1\0\0\0\1\0 rows run anterior to posterior as in
 *   the scanner's images. Columns are kept as stored (InVesalius never flips them), i.e. patient left on the right
 *   of the image; left/right cannot be confirmed from this symmetric anatomy.
 * The patient is fictitious by construction ("InVesalius^Cranium"); the project's own name is kept only in
 * ImageComments. Every UID is derived from a fixed namespace and a hash of the project's matrix and plist, so
 * converting the same file again gives the same UIDs (and byte-identical files).
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { gunzipSync } from "node:zlib";
import { data } from "dcmjs";
import { deterministicUid } from "../dicom/uid.js";
import { formatDS } from "../dicom/value-formats.js";
import { huPixelModule } from "../dicom/hu-pixel-module.js";

export const DEFAULT_INV3 = "/usr/share/doc/invesalius-examples/examples/Cranium.inv3";

const CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2";
const EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1";
/** Bump to give every converted series new UIDs (only if the output's content changes on purpose). */
const UID_NAMESPACE = ["ct-enhance", "invesalius-series", 1] as const;
const IMPLEMENTATION_CLASS_UID = deterministicUid("ct-enhance", "invesalius-series", "ImplementationClassUID", 1);
const IMPLEMENTATION_VERSION_NAME = "CTE_INV3_1";

export const SERIES_DESCRIPTION = "InVesalius example head CT (Debian invesalius-examples)";

// ---------------------------------------------------------------------------------------------------------------
// tar (ustar / GNU / pax) reader: just enough to list regular files and their bytes.

export interface TarEntry {
  name: string;
  data: Buffer;
}

function tarString(block: Buffer, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? field.length : end).toString("utf8");
}

function tarNumber(block: Buffer, offset: number, length: number, what: string): number {
  const field = block.subarray(offset, offset + length);
  if (field[0]! & 0x80) {
    // GNU base-256: big-endian binary with the top bit set as a marker.
    let value = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i]!;
    return value;
  }
  const text = tarString(block, offset, length).trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw new Error(`tar: ${what} field is not octal: ${JSON.stringify(text)}`);
  return parseInt(text, 8);
}

/** The regular files of an uncompressed tar archive, in archive order. */
export function readTar(archive: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  let offset = 0;
  let longName: string | undefined;
  let paxPath: string | undefined;
  while (offset + 512 <= archive.length) {
    const header = archive.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break; // end-of-archive marker
    const expected = tarNumber(header, 148, 8, "checksum");
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
    if (sum !== expected) throw new Error(`tar: bad header checksum at byte ${offset}`);
    const size = tarNumber(header, 124, 12, "size");
    const type = String.fromCharCode(header[156]!);
    const bodyStart = offset + 512;
    if (bodyStart + size > archive.length) throw new Error(`tar: entry at byte ${offset} runs past the archive's end`);
    const body = archive.subarray(bodyStart, bodyStart + size);
    offset = bodyStart + Math.ceil(size / 512) * 512;

    if (type === "L") {
      longName = body.toString("utf8").replace(/\0+$/, "");
      continue;
    }
    if (type === "x") {
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(body.toString("utf8"));
      paxPath = m?.[1];
      continue;
    }
    let name = tarString(header, 0, 100);
    if (tarString(header, 257, 6) === "ustar") {
      const prefix = tarString(header, 345, 155);
      if (prefix !== "") name = `${prefix}/${name}`;
    }
    name = paxPath ?? longName ?? name;
    paxPath = undefined;
    longName = undefined;
    if (type === "0" || type === "\0" || type === "7") entries.push({ name, data: body });
  }
  return entries;
}

// ---------------------------------------------------------------------------------------------------------------
// Apple XML property list reader: dict, array, string, integer, real, true, false, date, data.

export type PlistValue = string | number | boolean | PlistValue[] | { [key: string]: PlistValue };

const XML_ENTITIES: Record<string, string> = { "&lt;": "<", "&gt;": ">", "&amp;": "&", "&quot;": '"', "&apos;": "'" };

export function parsePlist(xml: string): PlistValue {
  const body = xml
    .replace(/<\?[\s\S]*?\?>/g, "")
    .replace(/<!DOCTYPE[\s\S]*?>/g, "")
    .replace(/<!--[\s\S]*?-->/g, "");
  type Token = { text: string } | { tag: string; close: boolean; empty: boolean };
  const tokens: Token[] = [...body.matchAll(/<(\/?)([A-Za-z]+)[^>]*?(\/?)>|([^<]+)/g)]
    .map((m): Token => (m[4] !== undefined ? { text: m[4] } : { tag: m[2]!, close: m[1] === "/", empty: m[3] === "/" }))
    .filter((t) => !("text" in t) || t.text.trim() !== "");
  let i = 0;
  const next = () => {
    const t = tokens[i++];
    if (!t) throw new Error("plist: unexpected end of document");
    return t;
  };
  const textUntil = (tag: string): string => {
    let text = "";
    for (let t = next(); !("tag" in t && t.tag === tag && t.close); t = next()) {
      if (!("text" in t)) throw new Error(`plist: <${t.tag}> inside <${tag}>`);
      text += t.text;
    }
    return text.replace(/&(lt|gt|amp|quot|apos);/g, (e) => XML_ENTITIES[e]!);
  };
  const value = (): PlistValue => {
    const t = next();
    if (!("tag" in t) || t.close) throw new Error(`plist: expected a value, got ${JSON.stringify(t)}`);
    switch (t.tag) {
      case "plist":
        if (t.empty) throw new Error("plist: empty document");
        {
          const v = value();
          const end = next();
          if (!("tag" in end && end.tag === "plist" && end.close)) throw new Error("plist: expected </plist>");
          return v;
        }
      case "dict": {
        const out: { [key: string]: PlistValue } = {};
        if (t.empty) return out;
        for (;;) {
          const k = next();
          if ("tag" in k && k.tag === "dict" && k.close) return out;
          if (!("tag" in k) || k.tag !== "key" || k.close) throw new Error("plist: expected <key> in <dict>");
          const key = k.empty ? "" : textUntil("key");
          out[key] = value();
        }
      }
      case "array": {
        const out: PlistValue[] = [];
        if (t.empty) return out;
        for (;;) {
          const peek = tokens[i];
          if (peek && "tag" in peek && peek.tag === "array" && peek.close) {
            i++;
            return out;
          }
          out.push(value());
        }
      }
      case "string":
      case "date":
      case "data":
        return t.empty ? "" : textUntil(t.tag);
      case "integer":
      case "real": {
        const text = t.empty ? "" : textUntil(t.tag).trim();
        const n = Number(text);
        if (text === "" || !Number.isFinite(n)) throw new Error(`plist: <${t.tag}> ${JSON.stringify(text)} is not a number`);
        return n;
      }
      case "true":
      case "false":
        if (!t.empty) textUntil(t.tag);
        return t.tag === "true";
      default:
        throw new Error(`plist: unsupported element <${t.tag}>`);
    }
  };
  return value();
}

// ---------------------------------------------------------------------------------------------------------------
// The InVesalius project.

export interface InvesaliusVolume {
  /** Project name in main.plist (not a person's name; "ProMED CT 0051" for Cranium.inv3). */
  name: string;
  modality: string;
  /** Project save date from main.plist, used for every date and time in the series. */
  date: Date;
  slices: number;
  rows: number;
  columns: number;
  /** [x (column), y (row), z (slice)] in mm. */
  spacing: [number, number, number];
  window: { center: number; width: number };
  /** HU, little-endian int16, [slice][row][column] exactly as stored in matrix.dat. */
  voxels: Int16Array;
  /** sha256 of main.plist and matrix.dat together: the source's identity for the UIDs. */
  sha256: string;
}

function field(dict: { [key: string]: PlistValue }, key: string): PlistValue {
  const v = dict[key];
  if (v === undefined) throw new Error(`main.plist: key "${key}" is missing`);
  return v;
}

function numberArray(v: PlistValue, key: string, length: number): number[] {
  if (!Array.isArray(v) || v.length !== length || !v.every((x) => typeof x === "number")) {
    throw new Error(`main.plist: "${key}" should be an array of ${length} numbers, got ${JSON.stringify(v)}`);
  }
  return v as number[];
}

/** Reads an InVesalius 3 project (.inv3: gzip'd tar with main.plist and matrix.dat). */
export function readInv3(path: string): InvesaliusVolume {
  let archive: Buffer;
  try {
    archive = gunzipSync(readFileSync(path));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`${path}: cannot read as a gzip'd InVesalius project (.inv3): ${reason}`);
  }
  const entries = readTar(archive);
  const byBase = (base: string) => {
    const found = entries.filter((e) => e.name === base || e.name.endsWith(`/${base}`));
    if (found.length !== 1) throw new Error(`${path}: expected one ${base} in the project, found ${found.length}`);
    return found[0]!.data;
  };
  const plistBytes = byBase("main.plist");
  const plist = parsePlist(plistBytes.toString("utf8"));
  if (typeof plist !== "object" || plist === null || Array.isArray(plist)) throw new Error("main.plist: not a <dict>");

  const matrix = field(plist, "matrix");
  if (typeof matrix !== "object" || Array.isArray(matrix)) throw new Error('main.plist: "matrix" is not a <dict>');
  const dtype = field(matrix, "dtype");
  if (dtype !== "int16") throw new Error(`main.plist: matrix dtype ${JSON.stringify(dtype)} is not supported (int16 only)`);
  const [slices, rows, columns] = numberArray(field(matrix, "shape"), "matrix.shape", 3) as [number, number, number];
  const filename = field(matrix, "filename");
  if (typeof filename !== "string") throw new Error('main.plist: "matrix.filename" is not a string');
  const orientation = plist.orientation;
  // InVesalius: 1 = axial (the slices of matrix.dat are the acquired axial images).
  if (orientation !== undefined && orientation !== 1 && orientation !== "AXIAL") {
    throw new Error(`main.plist: orientation ${JSON.stringify(orientation)} is not axial; only axial projects are supported`);
  }
  const modality = field(plist, "modality");
  if (modality !== "CT") throw new Error(`main.plist: modality ${JSON.stringify(modality)} is not CT`);
  const spacing = numberArray(field(plist, "spacing"), "spacing", 3) as [number, number, number];
  if (!spacing.every((s) => s > 0)) throw new Error(`main.plist: spacing ${JSON.stringify(spacing)} must be positive`);
  const [low, high] = numberArray(field(plist, "scalar_range"), "scalar_range", 2) as [number, number];
  const center = plist.window_level;
  const width = plist.window_width;
  const dateText = plist.date;
  const date = typeof dateText === "string" ? new Date(`${dateText.slice(0, 23)}Z`) : new Date(Date.UTC(2012, 0, 1));
  if (Number.isNaN(date.getTime())) throw new Error(`main.plist: date ${JSON.stringify(dateText)} is not a date`);

  const matrixBytes = byBase(filename);
  if (matrixBytes.length !== slices * rows * columns * 2) {
    throw new Error(`${filename}: ${matrixBytes.length} bytes, expected ${slices}x${rows}x${columns} int16`);
  }
  const voxels = new Int16Array(slices * rows * columns);
  for (let i = 0; i < voxels.length; i++) voxels[i] = matrixBytes.readInt16LE(i * 2);
  // Byte-order check: little-endian HU stays inside the project's scalar range (big-endian would span +-32768).
  let min = Infinity;
  let max = -Infinity;
  for (const v of voxels) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (min < low || max > high) {
    throw new Error(`${filename}: values [${min}, ${max}] outside scalar_range [${low}, ${high}]: not little-endian HU?`);
  }

  return {
    name: typeof plist.name === "string" ? plist.name : "",
    modality,
    date,
    slices,
    rows,
    columns,
    spacing,
    window: {
      center: typeof center === "number" ? center : 40,
      width: typeof width === "number" && width > 0 ? width : 400,
    },
    voxels,
    sha256: createHash("sha256").update(plistBytes).update(matrixBytes).digest("hex"),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The CT series.

const ds = formatDS;

const da = (d: Date) => d.toISOString().slice(0, 10).replace(/-/g, "");
const tm = (d: Date) => d.toISOString().slice(11, 19).replace(/:/g, "");

export interface SeriesUids {
  study: string;
  series: string;
  frameOfReference: string;
  sopInstance(sliceIndex: number): string;
}

export function seriesUids(volume: Pick<InvesaliusVolume, "sha256">): SeriesUids {
  const uid = (...parts: (string | number)[]) => deterministicUid(...UID_NAMESPACE, volume.sha256, ...parts);
  return {
    study: uid("study"),
    series: uid("series"),
    frameOfReference: uid("frame-of-reference"),
    sopInstance: (k) => uid("instance", k),
  };
}

/** Patient-coordinate position (mm) of the first voxel of slice k: centred in x and y, z = k * spacing_z. */
export function imagePosition(volume: Pick<InvesaliusVolume, "rows" | "columns" | "spacing">, k: number): [number, number, number] {
  const [sx, sy, sz] = volume.spacing;
  const round = (v: number) => Math.round(v * 1e4) / 1e4;
  return [round((-(volume.columns - 1) / 2) * sx), round((-(volume.rows - 1) / 2) * sy), round(k * sz)];
}

/** Slice k's pixels for DICOM: rows reversed (InVesalius stores them bottom-up), little-endian int16. */
function slicePixels(volume: InvesaliusVolume, k: number): ArrayBuffer {
  const { rows, columns } = volume;
  const out = new Int16Array(rows * columns);
  const base = k * rows * columns;
  for (let r = 0; r < rows; r++) {
    const from = base + (rows - 1 - r) * columns;
    out.set(volume.voxels.subarray(from, from + columns), r * columns);
  }
  return out.buffer; // little-endian: Node runs on little-endian hosts only
}

/** The naturalized dataset of slice k, module by module after the CT Image IOD (PS3.3 A.3). */
export function sliceDataset(volume: InvesaliusVolume, uids: SeriesUids, k: number): data.NaturalDataset {
  const position = imagePosition(volume, k);
  const windows = [
    { center: volume.window.center, width: volume.window.width, explanation: "INVESALIUS" },
    { center: 40, width: 80, explanation: "BRAIN" },
    { center: 600, width: 2800, explanation: "BONE" },
  ];
  return {
    // SOP Common (C.12.1)
    SOPClassUID: CT_IMAGE_STORAGE,
    SOPInstanceUID: uids.sopInstance(k),
    InstanceCreationDate: da(volume.date),
    InstanceCreationTime: tm(volume.date),
    // Patient (C.7.1.1): fictitious, no real identity
    PatientName: "InVesalius^Cranium",
    PatientID: "INVESALIUS-CRANIUM",
    PatientBirthDate: "",
    PatientSex: "O",
    PatientIdentityRemoved: "YES",
    DeidentificationMethod: "No identity: InVesalius example project",
    // General Study (C.7.2.1)
    StudyInstanceUID: uids.study,
    StudyDate: da(volume.date),
    StudyTime: tm(volume.date),
    ReferringPhysicianName: "",
    StudyID: "INV3-CRANIUM",
    AccessionNumber: "",
    StudyDescription: "InVesalius example: Cranium head CT",
    // General Series (C.7.3.1)
    Modality: "CT",
    SeriesInstanceUID: uids.series,
    SeriesNumber: 1,
    SeriesDate: da(volume.date),
    SeriesTime: tm(volume.date),
    SeriesDescription: SERIES_DESCRIPTION,
    BodyPartExamined: "HEAD",
    PatientPosition: "HFS",
    // Frame of Reference (C.7.4.1)
    FrameOfReferenceUID: uids.frameOfReference,
    PositionReferenceIndicator: "",
    // General Equipment (C.7.5.1)
    Manufacturer: "converted from InVesalius example",
    // General Acquisition (C.7.10.1)
    AcquisitionNumber: 1,
    // General Image (C.7.6.1)
    InstanceNumber: k + 1,
    ContentDate: da(volume.date),
    ContentTime: tm(volume.date),
    ImageComments: `Slice ${k + 1} of ${volume.slices} of InVesalius project "${volume.name}" (Cranium.inv3)`.slice(0, 1024),
    BurnedInAnnotation: "NO",
    LossyImageCompression: "00",
    // Image Plane (C.7.6.2)
    PixelSpacing: [ds(volume.spacing[1]), ds(volume.spacing[0])], // row spacing (y), column spacing (x)
    ImageOrientationPatient: ["1", "0", "0", "0", "1", "0"],
    ImagePositionPatient: position.map(ds),
    SliceThickness: ds(volume.spacing[2]),
    SliceLocation: ds(position[2]),
    // Image Pixel (C.7.6.3) and CT Image (C.8.2.1)
    ImageType: ["ORIGINAL", "PRIMARY", "AXIAL"],
    ...huPixelModule(volume.rows, volume.columns),
    KVP: "",
    // VOI LUT (C.11.2)
    WindowCenter: windows.map((w) => ds(w.center)),
    WindowWidth: windows.map((w) => ds(w.width)),
    WindowCenterWidthExplanation: windows.map((w) => w.explanation),
    PixelData: [slicePixels(volume, k)],
    _vrMap: { PixelData: "OW" },
  };
}

function part10(dataset: data.NaturalDataset): Uint8Array {
  const meta = data.DicomMetaDictionary.denaturalizeDataset({
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: dataset.SOPClassUID,
    MediaStorageSOPInstanceUID: dataset.SOPInstanceUID,
    TransferSyntaxUID: EXPLICIT_VR_LITTLE_ENDIAN,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: IMPLEMENTATION_VERSION_NAME,
  });
  const dict = new data.DicomDict(meta);
  dict.dict = data.DicomMetaDictionary.denaturalizeDataset(dataset);
  return new Uint8Array(dict.write({ allowInvalidVRLength: false }));
}

export interface ConversionResult {
  files: string[];
  studyInstanceUID: string;
  seriesInstanceUID: string;
  volume: Omit<InvesaliusVolume, "voxels">;
}

/** Writes one DICOM file per slice into `outDir` (created if needed; same-named files are overwritten). */
export function convertInvesalius(options: { inv3?: string; outDir: string }): ConversionResult {
  const volume = readInv3(options.inv3 ?? DEFAULT_INV3);
  const uids = seriesUids(volume);
  mkdirSync(options.outDir, { recursive: true });
  const digits = Math.max(4, String(volume.slices).length);
  const files: string[] = [];
  for (let k = 0; k < volume.slices; k++) {
    const file = join(options.outDir, `CT-${String(k + 1).padStart(digits, "0")}.dcm`);
    writeFileSync(file, part10(sliceDataset(volume, uids, k)));
    files.push(file);
  }
  const { voxels: _voxels, ...rest } = volume;
  return { files, studyInstanceUID: uids.study, seriesInstanceUID: uids.series, volume: rest };
}

// ---------------------------------------------------------------------------------------------------------------
// Command line.

const USAGE = `usage: node dist/tools/invesalius-series.js [--inv3 PATH] --out FOLDER
Converts an InVesalius 3 project (default ${DEFAULT_INV3},
from Debian's invesalius-examples package) into a CT series, one DICOM file per slice, in FOLDER.`;

export function main(argv: string[]): number {
  let inv3 = DEFAULT_INV3;
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith("--")) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === "--inv3") inv3 = value();
    else if (arg.startsWith("--inv3=")) inv3 = arg.slice(7);
    else if (arg === "--out") out = value();
    else if (arg.startsWith("--out=")) out = arg.slice(6);
    else if (arg === "--help" || arg === "-h") {
      console.log(USAGE);
      return 0;
    } else throw new Error(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`);
  }
  if (!out) throw new Error(`--out FOLDER is required\n${USAGE}`);
  const result = convertInvesalius({ inv3, outDir: resolve(out) });
  const v = result.volume;
  console.log(
    JSON.stringify({
      out: resolve(out),
      files: result.files.length,
      rows: v.rows,
      columns: v.columns,
      spacing: v.spacing,
      studyInstanceUID: result.studyInstanceUID,
      seriesInstanceUID: result.seriesInstanceUID,
      source: { inv3, project: v.name, sha256: v.sha256 },
    }),
  );
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (error) {
    console.error(`invesalius-series: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 2;
  }
}
