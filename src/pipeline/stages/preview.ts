/**
 * After inference: a before/after preview of the job (the source's middle slice beside the model's output for the
 * same slice, both windowed alike) as a PNG under <dataDir>/previews/, which the API serves and the Orthanc Explorer
 * panel shows. A preview that cannot be written never fails the job.
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { CtVolume } from "../../dicom/ct-volume.js";
import { encodeGrayscalePng, windowToGray } from "../../dicom/preview-png.js";

/** Mediastinal-ish window that shows both soft tissue and contrast-filled vessels. */
export const PREVIEW_WINDOW = { center: 100, width: 700 } as const;
/** Gray columns between the two halves. */
const GAP = 4;

export function previewPath(dataDir: string, jobId: number): string {
  return path.join(dataDir, "previews", `job-${jobId}.png`);
}

/** Source and output middle slice side by side (source left), windowed, as PNG bytes. */
export function beforeAfterPng(volume: CtVolume, output: Float32Array, window = PREVIEW_WINDOW): Buffer {
  const { rows, columns, slices } = volume;
  const size = rows * columns;
  if (output.length !== volume.hu.length) {
    throw new RangeError(`preview: output has ${output.length} voxels, the volume ${volume.hu.length}`);
  }
  const middle = Math.floor(slices / 2);
  const before = windowToGray(volume.hu.subarray(middle * size, (middle + 1) * size), window.center, window.width);
  const after = windowToGray(output.subarray(middle * size, (middle + 1) * size), window.center, window.width);
  const width = columns * 2 + GAP;
  const pixels = new Uint8Array(width * rows).fill(128);
  for (let row = 0; row < rows; row++) {
    pixels.set(before.subarray(row * columns, (row + 1) * columns), row * width);
    pixels.set(after.subarray(row * columns, (row + 1) * columns), row * width + columns + GAP);
  }
  return encodeGrayscalePng(width, rows, pixels);
}

/** Writes the job's preview (atomically: a half-written PNG is never served); returns its path. */
export function writeJobPreview(dataDir: string, jobId: number, volume: CtVolume, output: Float32Array): string {
  const file = previewPath(dataDir, jobId);
  mkdirSync(path.dirname(file), { recursive: true });
  const partial = `${file}.partial`;
  writeFileSync(partial, beforeAfterPng(volume, output));
  renameSync(partial, file);
  return file;
}
