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
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { data } from "dcmjs";
import { huPixelModule } from "../dicom/hu-pixel-module.js";
import { SopClass, writePart10 } from "../dicom/part10.js";
import { deterministicUid } from "../dicom/uid.js";
import { formatDA, formatDS } from "../dicom/value-formats.js";
import { type InvesaliusVolume, readInv3 } from "./inv3-project.js";

export const DEFAULT_INV3 = "/usr/share/doc/invesalius-examples/examples/Cranium.inv3";

/** Bump to give every converted series new UIDs (only if the output's content changes on purpose). */
const UID_NAMESPACE = ["ct-enhance", "invesalius-series", 1] as const;

export const SERIES_DESCRIPTION = "InVesalius example head CT (Debian invesalius-examples)";

// ---------------------------------------------------------------------------------------------------------------
// The CT series.

const ds = formatDS;
const da = formatDA;
/** TM without fractions: the project's date has none. */
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
    SOPClassUID: SopClass.CtImage,
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
    ImagePositionPatient: position.map((v) => ds(v)),
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
    writeFileSync(file, writePart10(sliceDataset(volume, uids, k)));
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
