/**
 * A simulated reconstruction kernel: the same CT smoothed or sharpened in-plane, as a softer or sharper kernel would
 * reconstruct it, so that a decision or a check can be shown not to depend on the kernel (tests, and
 * src/tools/output-checks-run.ts).
 */
import type { CtVolume } from "../dicom/ct-volume.js";

/** Each slice convolved in-plane with [a, b, a] rows and columns (b + 2a = 1): a < 0 sharpens, a > 0 smooths. */
export function inPlaneKernel(volume: CtVolume, a: number): CtVolume {
  const out = new Float32Array(new SharedArrayBuffer(volume.hu.byteLength));
  const { rows, columns } = volume;
  const b = 1 - 2 * a;
  const plane = rows * columns;
  const row = new Float32Array(plane);
  for (let k = 0; k < volume.slices; k += 1) {
    const src = volume.hu.subarray(k * plane, (k + 1) * plane);
    for (let i = 0; i < plane; i += 1) {
      const c = i % columns;
      row[i] = c === 0 || c === columns - 1 ? src[i]! : a * src[i - 1]! + b * src[i]! + a * src[i + 1]!;
    }
    for (let i = 0; i < plane; i += 1) {
      const r = Math.floor(i / columns);
      out[k * plane + i] = r === 0 || r === rows - 1 ? row[i]! : a * row[i - columns]! + b * row[i]! + a * row[i + columns]!;
    }
  }
  return { ...volume, hu: out };
}
