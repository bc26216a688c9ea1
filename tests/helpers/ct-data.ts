/**
 * The real CT series beside every checkout, in ../shared/data/ct (never copied into the repository).
 * In CI their absence fails the run; elsewhere tests that need them are skipped with a message saying why.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { data } from "dcmjs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const ctDataRoot = path.resolve(repoRoot, "../shared/data/ct");

export type CtSeriesName = "lidc-idri-0002-ncct" | "lidc-idri-0001-cect" | "ricord-ncct-jpegls";

/** True when the data folder (and every named series) is there; false with a printed reason; throws in CI. */
export function requireCtData(...series: CtSeriesName[]): boolean {
  const missing = [ctDataRoot, ...series.map(ctSeriesFolder)].filter((folder) => !existsSync(folder));
  if (missing.length === 0) return true;
  const message = `missing real CT data: ${missing.join(", ")} (see ../shared/data/README.md)`;
  if (process.env.CI) throw new Error(`${message}; CI must have it`);
  console.warn(`skipping: ${message}`);
  return false;
}

export function ctSeriesFolder(series: CtSeriesName): string {
  return path.join(ctDataRoot, series);
}

/** The series' Part-10 files (*.dcm), sorted by file name. */
export function ctSeriesFiles(series: CtSeriesName): string[] {
  const folder = ctSeriesFolder(series);
  return readdirSync(folder)
    .filter((name) => name.toLowerCase().endsWith(".dcm"))
    .sort()
    .map((name) => path.join(folder, name));
}

/** The series' instances as bytes, in file-name order. */
export function readCtSeries(series: CtSeriesName): Uint8Array[] {
  return ctSeriesFiles(series).map((file) => new Uint8Array(readFileSync(file)));
}

/** The series' files in position order (along z; these series are axial), each read up to ImagePositionPatient only. */
export function filesInPositionOrder(files: string[]): string[] {
  const z = (file: string): number => {
    const bytes = readFileSync(file);
    const dicom = data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength), {
      untilTag: "00200032",
      includeUntilTagValue: true,
    });
    return Number(dicom.dict["00200032"]!.Value![2]);
  };
  return files.map((file) => ({ file, z: z(file) })).sort((a, b) => a.z - b.z).map((s) => s.file);
}

/**
 * The demo's head CT (Debian's invesalius-examples, converted to a DICOM series once per test run), as a folder; or
 * undefined with a printed reason outside CI; in CI its absence fails.
 */
export async function headCtFolder(): Promise<string | undefined> {
  const { existsSync: exists, mkdtempSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { convertInvesalius, DEFAULT_INV3 } = await import("../../src/tools/invesalius-series.js");
  if (!exists(DEFAULT_INV3)) {
    const message = `missing ${DEFAULT_INV3}: run scripts/install-system-deps.sh (package invesalius-examples)`;
    if (process.env.CI) throw new Error(`${message}; CI must have it`);
    console.warn(`skipping: ${message}`);
    return undefined;
  }
  headFolder ??= convertInvesalius({ outDir: mkdtempSync(path.join(tmpdir(), "ct-enhance-head-")) }).files[0]!.replace(/\/[^/]+$/, "");
  return headFolder;
}
let headFolder: string | undefined;
