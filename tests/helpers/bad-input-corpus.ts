/**
 * The bad and odd input corpus (issue 14), built in the test setup from a few slices of a real series (never
 * committed): contiguous LIDC-IDRI-0002 slices, their matrix reduced by keeping every n-th row and column (PixelSpacing
 * multiplied to match, so the anatomy and the geometry stay true and the tests stay fast), re-encoded as Explicit VR
 * Little Endian Part-10 files without private tags. Each case then edits headers or pixels with dcmjs.
 */
import { readFileSync } from "node:fs";
import { data } from "dcmjs";
import { beforeAll, describe, expect, it } from "vitest";
import type { CtVolume } from "../../src/dicom/ct-volume.js";
import { VolumeError } from "../../src/dicom/dicom-errors.js";
import { assembleVolume } from "../../src/dicom/volume.js";
import { ctSeriesFiles, filesInPositionOrder, type CtSeriesName } from "./ct-data.js";

export type Header = Record<string, unknown>;

const TRANSFER_SYNTAX = "00020010";

/** A Part-10 file as dcmjs's naturalized header (PixelData as [ArrayBuffer]) and its transfer syntax. */
export function readHeader(bytes: Uint8Array): { header: Header; transferSyntax: string } {
  const dicom = data.DicomMessage.readFile(bytes.slice().buffer);
  const header = data.DicomMetaDictionary.naturalizeDataset(dicom.dict) as Header;
  for (const key of Object.keys(header)) if (/^[0-9A-F]{8}$/i.test(key)) delete header[key]; // private tags
  return { header, transferSyntax: String(dicom.meta[TRANSFER_SYNTAX]!.Value![0]) };
}

/** Writes a naturalized header as a Part-10 file; the file meta names its SOP class, instance and transfer syntax. */
export function writeHeader(header: Header, transferSyntax = "1.2.840.10008.1.2.1"): Uint8Array {
  const meta = data.DicomMetaDictionary.denaturalizeDataset({
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: header.SOPClassUID,
    MediaStorageSOPInstanceUID: header.SOPInstanceUID,
    TransferSyntaxUID: transferSyntax,
    ImplementationClassUID: "1.2.826.0.1.3680043.10.1338.14",
  });
  const dict = new data.DicomDict(meta);
  dict.dict = data.DicomMetaDictionary.denaturalizeDataset(header);
  return new Uint8Array(dict.write());
}

/** Re-encodes an instance after changing its header (keywords as dcmjs names them). */
export function edit(bytes: Uint8Array, change: (header: Header) => void, transferSyntax?: string): Uint8Array {
  const read = readHeader(bytes);
  change(read.header);
  return writeHeader(read.header, transferSyntax ?? read.transferSyntax);
}

/** The stored 16-bit values of an instance written by this corpus (PixelData OW, little endian). */
export function storedPixels(header: Header): Int16Array {
  const buffer = (header.PixelData as ArrayBuffer[])[0]!;
  return new Int16Array(buffer.slice(0));
}

/** Keeps every `factor`-th row and column of a slice: the same anatomy in a smaller matrix. */
function reduceMatrix(header: Header, factor: number): void {
  const rows = Number(header.Rows);
  const columns = Number(header.Columns);
  const source = storedPixels(header);
  const [outRows, outColumns] = [Math.floor(rows / factor), Math.floor(columns / factor)];
  const reduced = new Int16Array(outRows * outColumns);
  for (let r = 0; r < outRows; r += 1) {
    for (let c = 0; c < outColumns; c += 1) reduced[r * outColumns + c] = source[r * factor * columns + c * factor]!;
  }
  const spacing = (header.PixelSpacing as (number | string)[]).map((v) => Number(v) * factor);
  Object.assign(header, { Rows: outRows, Columns: outColumns, PixelSpacing: spacing, PixelData: [reduced.buffer] });
  header._vrMap = { PixelData: "OW" };
}

export interface CorpusSeries {
  /** Instances in position order (the first is the most inferior), reduced and re-encoded. */
  slices: Uint8Array[];
  rows: number;
  columns: number;
}

/** `count` contiguous slices from the middle of a real series, every `factor`-th row and column kept. */
export function realSlices(series: CtSeriesName, count: number, factor: number): CorpusSeries {
  const files = filesInPositionOrder(ctSeriesFiles(series));
  const start = Math.max(0, Math.floor((files.length - count) / 2));
  const slices = files.slice(start, start + count).map((file) => {
    const read = readHeader(new Uint8Array(readFileSync(file)));
    reduceMatrix(read.header, factor);
    return writeHeader(read.header);
  });
  const first = readHeader(slices[0]!).header;
  return { slices, rows: Number(first.Rows), columns: Number(first.Columns) };
}

/** A fresh UID under a test root (2.25 + a decimal of the counter), unique within a run. */
let uidCounter = 0;
export function testUid(): string {
  uidCounter += 1;
  return `2.25.${Date.now()}${String(uidCounter).padStart(4, "0")}`;
}

/** One corpus case for the volume stage: the instances it sends and the outcome it must end in. */
export interface VolumeCase {
  name: string;
  instances: (base: CorpusSeries) => Uint8Array[] | Promise<Uint8Array[]>;
  /** Processed: checks on the volume (beside the untouched base volume). Refused: the reason must match. */
  outcome: { processed: (volume: CtVolume, base: CtVolume) => void } | { refused: RegExp };
}

/** The volume stage's answer: the volume, or the VolumeError it refused with (anything else is thrown on). */
export async function volumeOutcome(instances: Uint8Array[]): Promise<{ volume: CtVolume } | { refusal: VolumeError }> {
  try {
    return { volume: await assembleVolume(instances) };
  } catch (error) {
    if (error instanceof VolumeError) return { refusal: error };
    throw error;
  }
}

/** Runs a table of cases against the volume stage (the same assembleVolume the fetch stage streams into). */
export function describeVolumeCases(title: string, ready: boolean, cases: VolumeCase[]): void {
  describe.skipIf(!ready)(title, () => {
    let base: CorpusSeries;
    let baseVolume: CtVolume;
    beforeAll(async () => {
      base = realSlices("lidc-idri-0002-ncct", CORPUS_SLICES, CORPUS_REDUCTION);
      baseVolume = await assembleVolume(base.slices);
    });
    it.each(cases.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
      const outcome = await volumeOutcome(await c.instances(base));
      if ("refused" in c.outcome) {
        expect("refusal" in outcome ? outcome.refusal.message : "processed", "refused with a reason").toMatch(c.outcome.refused);
        if ("refusal" in outcome) expect(outcome.refusal.retryable).toBe(false);
      } else {
        if ("refusal" in outcome) throw new Error(`refused: ${outcome.refusal.message}`);
        c.outcome.processed(outcome.volume, baseVolume);
      }
    });
  });
}

/** 12 slices of LIDC-IDRI-0002 (1.25 mm apart), every 8th row and column: 64x64 pixels of 5.45 mm. */
export const CORPUS_SLICES = 12;
export const CORPUS_REDUCTION = 8;

/** The base volume's geometry, as every processed case that keeps it must show it. */
export function expectBaseGeometry(volume: CtVolume, base: CtVolume): void {
  expect([volume.slices, volume.rows, volume.columns]).toEqual([base.slices, base.rows, base.columns]);
  expect(volume.sliceSpacing).toBeCloseTo(1.25, 3);
  expect(volume.pixelSpacing[0]).toBeCloseTo(0.681641 * CORPUS_REDUCTION, 4);
  expect(volume.imageOrientationPatient).toEqual([1, 0, 0, 0, 1, 0]);
  expect(volume.imagePositionPatient).toEqual(base.imagePositionPatient);
}

/** The same HU, voxel for voxel, as the untouched base. */
export function expectBaseHu(volume: CtVolume, base: CtVolume): void {
  expectBaseGeometry(volume, base);
  let worst = 0;
  for (let i = 0; i < base.hu.length; i += 1) worst = Math.max(worst, Math.abs(volume.hu[i]! - base.hu[i]!));
  expect(worst, "largest HU difference from the untouched slices").toBeLessThan(1e-3);
}
