/**
 * Between HU volumes and network tensors, as the manifest says: neighbouring slices as channels (2.5D), HU clipped
 * and mapped linearly to the network's range, rows and columns padded to the network's multiple; and back.
 * Pure functions, so the mapping is tested without a model.
 */
import type { ModelManifest } from "./manifest.js";

export interface VolumeShape {
  slices: number;
  rows: number;
  columns: number;
}

export interface NetworkGeometry {
  /** Padded rows and columns the network sees. */
  rows: number;
  columns: number;
  channels: number;
}

export function networkGeometry(manifest: ModelManifest, shape: VolumeShape): NetworkGeometry {
  const { size, spatialMultiple, contextSlices } = manifest.input;
  if (size && (size[0] !== shape.rows || size[1] !== shape.columns)) {
    throw new Error(
      `model ${manifest.id} takes ${size[0]}x${size[1]} slices; this series has ${shape.rows}x${shape.columns}`,
    );
  }
  const roundUp = (n: number): number => Math.ceil(n / spatialMultiple) * spatialMultiple;
  return { rows: roundUp(shape.rows), columns: roundUp(shape.columns), channels: contextSlices };
}

/** HU -> network value, clipped to the manifest's HU range. */
export function huToNetwork(manifest: ModelManifest): (hu: number) => number {
  const { huMin, huMax, networkMin, networkMax } = manifest.intensity;
  const scale = (networkMax - networkMin) / (huMax - huMin);
  return (hu) => networkMin + (Math.min(huMax, Math.max(huMin, hu)) - huMin) * scale;
}

/** Network value -> HU (inverse of huToNetwork, without clipping). */
export function networkToHu(manifest: ModelManifest): (value: number) => number {
  const { huMin, huMax, networkMin, networkMax } = manifest.intensity;
  const scale = (huMax - huMin) / (networkMax - networkMin);
  return (value) => huMin + (value - networkMin) * scale;
}

/**
 * Fills `tensor` (N x C x H x W, H and W padded) for slices [first, first + count) of `hu`.
 * Channel j of slice k is slice k - (C - 1) / 2 + j, clamped to the volume; padding is the network value of huMin.
 */
export function fillInputBatch(
  manifest: ModelManifest,
  hu: Float32Array,
  shape: VolumeShape,
  geometry: NetworkGeometry,
  first: number,
  count: number,
  tensor: Float32Array,
): void {
  const map = huToNetwork(manifest);
  const pad = map(manifest.intensity.huMin);
  const { rows, columns } = shape;
  const plane = rows * columns;
  const netPlane = geometry.rows * geometry.columns;
  const half = (geometry.channels - 1) / 2;
  tensor.fill(pad, 0, count * geometry.channels * netPlane);
  for (let n = 0; n < count; n++) {
    for (let j = 0; j < geometry.channels; j++) {
      const source = Math.min(shape.slices - 1, Math.max(0, first + n - half + j));
      const from = source * plane;
      const to = (n * geometry.channels + j) * netPlane;
      for (let r = 0; r < rows; r++) {
        const rowFrom = from + r * columns;
        const rowTo = to + r * geometry.columns;
        for (let c = 0; c < columns; c++) tensor[rowTo + c] = map(hu[rowFrom + c]!);
      }
    }
  }
}

/** Copies the network's output for slices [first, first + count) into `out` (HU or probability), cropping padding. */
export function readOutputBatch(
  manifest: ModelManifest,
  output: Float32Array,
  shape: VolumeShape,
  geometry: NetworkGeometry,
  first: number,
  count: number,
  out: Float32Array,
): void {
  const toValue = manifest.output.meaning === "hu-image" ? networkToHu(manifest) : (v: number) => v;
  const { rows, columns } = shape;
  const plane = rows * columns;
  const netPlane = geometry.rows * geometry.columns;
  for (let n = 0; n < count; n++) {
    const from = n * netPlane; // output has one channel
    const to = (first + n) * plane;
    for (let r = 0; r < rows; r++) {
      const rowFrom = from + r * geometry.columns;
      const rowTo = to + r * columns;
      for (let c = 0; c < columns; c++) out[rowTo + c] = toValue(output[rowFrom + c]!);
    }
  }
}
