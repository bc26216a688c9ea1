/**
 * After inference: a before/after preview of the job (the source's middle slice beside the model's output for the
 * same slice, both windowed alike) as a PNG under <dataDir>/previews/, which the API serves and the Orthanc Explorer
 * panel shows. A preview that cannot be written never fails the job.
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { encodeGrayscalePng, windowToGray } from "../../dicom/preview-png.js";

/** Mediastinal-ish window that shows both soft tissue and contrast-filled vessels. */
export const PREVIEW_WINDOW = { center: 100, width: 700 } as const;
/** Gray columns between the two halves. */
const GAP = 4;

export function previewPath(dataDir: string, jobId: number): string {
  return path.join(dataDir, "previews", `job-${jobId}.png`);
}

/** The middle slice's number (0-based) of a series of `slices`: the slice the preview shows. */
export function previewSliceIndex(slices: number): number {
  return Math.floor(slices / 2);
}

/** One slice of the source and the model's output for it, side by side (source left), windowed alike. */
export interface PreviewPair {
  rows: number;
  columns: number;
  before: Float32Array;
  after: Float32Array;
}

/** The pair as PNG bytes. */
export function beforeAfterPng(pair: PreviewPair, window = PREVIEW_WINDOW): Buffer {
  const { rows, columns } = pair;
  const size = rows * columns;
  if (pair.before.length !== size || pair.after.length !== size) {
    throw new RangeError(`preview: slices of ${pair.before.length} and ${pair.after.length} voxels where ${rows}x${columns} is ${size}`);
  }
  const before = windowToGray(pair.before, window.center, window.width);
  const after = windowToGray(pair.after, window.center, window.width);
  const width = columns * 2 + GAP;
  const pixels = new Uint8Array(width * rows).fill(128);
  for (let row = 0; row < rows; row++) {
    pixels.set(before.subarray(row * columns, (row + 1) * columns), row * width);
    pixels.set(after.subarray(row * columns, (row + 1) * columns), row * width + columns + GAP);
  }
  return encodeGrayscalePng(width, rows, pixels);
}

/** Writes the job's preview (atomically: a half-written PNG is never served); returns its path. */
export function writeJobPreview(dataDir: string, jobId: number, pair: PreviewPair): string {
  const file = previewPath(dataDir, jobId);
  mkdirSync(path.dirname(file), { recursive: true });
  const partial = `${file}.partial`;
  writeFileSync(partial, beforeAfterPng(pair));
  renameSync(partial, file);
  return file;
}
