/**
 * A body mask: for image metrics, so air around the patient (and the scanner table's surroundings) does not inflate
 * SSIM and PSNR, and for the anatomy probe. Per slice of the reference: voxels above a threshold (default -500 HU), the largest 4-connected
 * component kept (the body; the table and small fragments are dropped when they do not touch it), holes filled
 * (lungs, airways and bowel gas inside the body count as body). The same as, per slice,
 * scipy.ndimage.binary_fill_holes(largest component of scipy.ndimage.label(hu > threshold)).
 */
import type { VolumeShape } from "../dicom/ct-volume.js";

export const DEFAULT_BODY_THRESHOLD_HU = -500;

/** 4-connected labelling of one slice's foreground; returns the largest component's pixels (first found on a tie). */
export function largestComponent(foreground: Uint8Array, rows: number, columns: number): Uint8Array {
  const labels = new Int32Array(rows * columns);
  const stack = new Int32Array(rows * columns);
  const neighbours = new Int32Array(4);
  let bestLabel = 0;
  let bestSize = 0;
  let label = 0;
  for (let start = 0; start < foreground.length; start += 1) {
    if (!foreground[start] || labels[start]) continue;
    label += 1;
    let size = 0;
    let top = 0;
    stack[top++] = start;
    labels[start] = label;
    while (top > 0) {
      const i = stack[--top]!;
      size += 1;
      const r = (i / columns) | 0;
      const c = i - r * columns;
      neighbours[0] = r > 0 ? i - columns : -1;
      neighbours[1] = r < rows - 1 ? i + columns : -1;
      neighbours[2] = c > 0 ? i - 1 : -1;
      neighbours[3] = c < columns - 1 ? i + 1 : -1;
      for (let n = 0; n < 4; n += 1) {
        const j = neighbours[n]!;
        if (j < 0 || !foreground[j] || labels[j]) continue;
        labels[j] = label;
        stack[top++] = j;
      }
    }
    if (size > bestSize) {
      bestSize = size;
      bestLabel = label;
    }
  }
  const out = new Uint8Array(rows * columns);
  if (bestLabel === 0) return out;
  for (let i = 0; i < out.length; i += 1) out[i] = labels[i] === bestLabel ? 1 : 0;
  return out;
}

/** Background not 4-connected to the slice's border becomes foreground (scipy's binary_fill_holes). */
export function fillHoles(mask: Uint8Array, rows: number, columns: number): void {
  const outside = new Uint8Array(rows * columns);
  const stack = new Int32Array(rows * columns);
  let top = 0;
  const seed = (i: number): void => {
    if (mask[i] || outside[i]) return;
    outside[i] = 1;
    stack[top++] = i;
  };
  for (let c = 0; c < columns; c += 1) {
    seed(c);
    seed((rows - 1) * columns + c);
  }
  for (let r = 0; r < rows; r += 1) {
    seed(r * columns);
    seed(r * columns + columns - 1);
  }
  while (top > 0) {
    const i = stack[--top]!;
    const r = (i / columns) | 0;
    const c = i - r * columns;
    if (r > 0) seed(i - columns);
    if (r < rows - 1) seed(i + columns);
    if (c > 0) seed(i - 1);
    if (c < columns - 1) seed(i + 1);
  }
  for (let i = 0; i < mask.length; i += 1) if (!outside[i]) mask[i] = 1;
}

/** The body mask of a HU volume (1 = body), slice by slice. */
export function bodyMask(hu: ArrayLike<number>, shape: VolumeShape, thresholdHu = DEFAULT_BODY_THRESHOLD_HU): Uint8Array {
  const { slices, rows, columns } = shape;
  const plane = rows * columns;
  if (hu.length !== slices * plane) {
    throw new Error(`the volume has ${hu.length} voxels where ${slices}x${rows}x${columns} are expected`);
  }
  const mask = new Uint8Array(slices * plane);
  const foreground = new Uint8Array(plane);
  for (let k = 0; k < slices; k += 1) {
    for (let i = 0; i < plane; i += 1) foreground[i] = hu[k * plane + i]! > thresholdHu ? 1 : 0;
    const body = largestComponent(foreground, rows, columns);
    fillHoles(body, rows, columns);
    mask.set(body, k * plane);
  }
  return mask;
}
