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
  const channels = contextSlices + (manifest.input.noiseLevel ? 1 : 0);
  return { rows: roundUp(shape.rows), columns: roundUp(shape.columns), channels };
}

/** Why a model with a noise-level input cannot run without a measured noise: a person's next step, not a guess. */
export class MissingNoiseLevelError extends Error {
  override readonly name = "MissingNoiseLevelError";
}

/**
 * The value of the noise-level channel (the manifest's `input.noiseLevel`) for a series whose measured noise is
 * `noiseHu`; undefined for a model without that input. Throws MissingNoiseLevelError when the model needs it and
 * the noise is not a positive finite number.
 */
export function noiseLevelValue(manifest: ModelManifest, noiseHu: number | undefined): number | undefined {
  const level = manifest.input.noiseLevel;
  if (!level) return undefined;
  if (noiseHu === undefined || !Number.isFinite(noiseHu) || noiseHu <= 0) {
    throw new MissingNoiseLevelError(
      `model ${manifest.id} takes the series' measured image noise as an input (input.noiseLevel) and ` +
      `${noiseHu === undefined ? "none was measured" : `the measured noise is ${noiseHu} HU`}: the probe needs at least ` +
      "20 homogeneous 6 mm boxes of fat or soft tissue in the body; run it on a series that shows them",
    );
  }
  return noiseHu * level.scale;
}

/** HU -> network value, clipped to the manifest's HU range. */
export function huToNetwork(manifest: Pick<ModelManifest, "intensity">): (hu: number) => number {
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
 * Image channel j (j < contextSlices) of slice k is slice k - (contextSlices - 1) / 2 + j, clamped to the volume;
 * padding is the network value of huMin. A model with a noise-level input gets `noiseLevel` (noiseLevelValue) in
 * every pixel of its channel, padding included.
 */
export function fillInputBatch(
  manifest: ModelManifest,
  hu: Float32Array,
  shape: VolumeShape,
  geometry: NetworkGeometry,
  first: number,
  count: number,
  tensor: Float32Array,
  noiseLevel?: number,
): void {
  const map = huToNetwork(manifest);
  const pad = map(manifest.intensity.huMin);
  const { rows, columns } = shape;
  const plane = rows * columns;
  const netPlane = geometry.rows * geometry.columns;
  const imageChannels = manifest.input.contextSlices;
  const half = (imageChannels - 1) / 2;
  const noiseChannel = manifest.input.noiseLevel?.channel;
  if (noiseChannel !== undefined && noiseLevel === undefined) {
    throw new MissingNoiseLevelError(`model ${manifest.id} takes a noise-level input and no noise level was given`);
  }
  tensor.fill(pad, 0, count * geometry.channels * netPlane);
  for (let n = 0; n < count; n++) {
    if (noiseChannel !== undefined) {
      const at = (n * geometry.channels + noiseChannel) * netPlane;
      tensor.fill(noiseLevel!, at, at + netPlane);
    }
    for (let j = 0; j < imageChannels; j++) {
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

/** Errors onnxruntime and its providers raise when the device (or the host) has no memory left for a batch. */
const OUT_OF_MEMORY = /out of memory|failed to allocate|cudaMalloc|bad_alloc|\bOOM\b|CUBLAS_STATUS_ALLOC_FAILED/i;

export function isOutOfMemory(message: string): boolean {
  return OUT_OF_MEMORY.test(message);
}

/** One opened model on one execution provider: runs an N x C x H x W float32 batch, returns the output values. */
export interface BatchSession {
  provider: string;
  runBatch(input: Float32Array, dims: number[]): Promise<Float32Array>;
}

export interface SliceBatchRun {
  manifest: ModelManifest;
  /** HU, slice-major. With output "over-input" it is overwritten by the output. */
  hu: Float32Array;
  shape: VolumeShape;
  /** The session to start on (usually a GPU provider under `auto`). */
  session: BatchSession;
  /** Opens the CPU fallback when the device is out of memory even at batch 1. */
  openCpu(): Promise<BatchSession>;
  /** Slices per batch to start with; default the manifest's. */
  batchSize?: number;
  /** The series' measured image noise, HU (the probe's noiseHu): required by a manifest with input.noiseLevel. */
  noiseHu?: number;
  /**
   * Largest batch on the CPU provider (from the start, or after falling back to it). On a CPU a batch saves little
   * time and costs the network's activations once per slice in it (about 60 MB a 512x512 slice for the reference
   * U-Net); default no limit.
   */
  cpuBatchSize?: number;
  /**
   * Where the output goes (there is no third volume):
   * - "over-input": written over `hu` (one float32 volume at the peak). Slices are committed only once no later
   *   batch needs them as context, so 2.5D models see the original input;
   * - { stream }: each batch's slices [first, first + values.length / plane) are handed over as soon as they are
   *   computed, in order, as an array of their own, and nothing is kept.
   */
  output: OutputDisposal;
  onProgress?(slicesDone: number, provider: string): void;
}

/** Where a run's output goes: over the input volume, or streamed batch by batch to a listener. */
export type OutputDisposal = "over-input" | { stream(first: number, values: Float32Array): void };

export interface SliceBatchResult {
  /** The input volume, now holding the output ("over-input"); absent when it was streamed. */
  output: Float32Array | undefined;
  provider: string;
  /** Batch size in use at the end (smaller than asked after an out-of-memory). */
  batchSize: number;
  /** What out-of-memory made us do, in order, e.g. "cuda out of memory at batch 8: batch 4". */
  fallbacks: string[];
}

/**
 * Runs the model over every slice in batches. Out of memory halves the batch and tries the same slices again; at
 * batch 1 on a GPU it reopens the model on the CPU (at the CPU batch size); on the CPU at batch 1 it throws.
 * Any other error is thrown as it is.
 */
export async function runSliceBatches(run: SliceBatchRun): Promise<SliceBatchResult> {
  const { manifest, hu, shape } = run;
  const geometry = networkGeometry(manifest, shape);
  const noiseLevel = noiseLevelValue(manifest, run.noiseHu); // before any batch: a missing noise fails at once
  const plane = shape.rows * shape.columns;
  const netPlane = geometry.channels * geometry.rows * geometry.columns;
  const half = (manifest.input.contextSlices - 1) / 2;
  const startBatch = Math.max(1, Math.min(run.batchSize ?? manifest.batchSize, shape.slices));
  const cpuBatch = Math.max(1, Math.min(startBatch, run.cpuBatchSize ?? startBatch));
  const stream = run.output === "over-input" ? undefined : run.output.stream;
  const fallbacks: string[] = [];
  let session = run.session;
  let batchSize = session.provider === "cpu" ? cpuBatch : startBatch;
  let tensor = new Float32Array(batchSize * netPlane);

  // Over the input: batch outputs wait here until no later batch reads their slices as context.
  const pending: { first: number; count: number; values: Float32Array; committed: number }[] = [];
  const commitBelow = (limit: number): void => {
    while (pending.length > 0) {
      const batch = pending[0]!;
      const end = Math.min(batch.first + batch.count, limit);
      for (; batch.first + batch.committed < end; batch.committed += 1) {
        const k = batch.committed;
        hu.set(batch.values.subarray(k * plane, (k + 1) * plane), (batch.first + k) * plane);
      }
      if (batch.committed < batch.count) return;
      pending.shift();
    }
  };

  let first = 0;
  while (first < shape.slices) {
    const count = Math.min(batchSize, shape.slices - first);
    if (!stream) commitBelow(first - half);
    fillInputBatch(manifest, hu, shape, geometry, first, count, tensor, noiseLevel);
    let result: Float32Array;
    try {
      const dims = [count, geometry.channels, geometry.rows, geometry.columns];
      result = await session.runBatch(tensor.subarray(0, count * netPlane), dims);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (!isOutOfMemory(message)) throw error;
      if (batchSize > 1) {
        const smaller = Math.max(1, Math.floor(batchSize / 2));
        fallbacks.push(`${session.provider} out of memory at batch ${batchSize}: batch ${smaller}`);
        batchSize = smaller;
        continue; // the same slices again, smaller batch
      }
      if (session.provider === "cpu") throw error;
      fallbacks.push(`${session.provider} out of memory at batch 1: cpu, batch ${cpuBatch}`);
      session = await run.openCpu();
      batchSize = cpuBatch;
      tensor = new Float32Array(batchSize * netPlane);
      continue;
    }
    const values = new Float32Array(count * plane);
    readOutputBatch(manifest, result, shape, geometry, 0, count, values);
    if (stream) stream(first, values);
    else pending.push({ first, count, values, committed: 0 });
    first += count;
    run.onProgress?.(first, session.provider);
  }
  commitBelow(Number.POSITIVE_INFINITY);
  return { output: stream ? undefined : hu, provider: session.provider, batchSize, fallbacks };
}

/** float32 -> IEEE 754 half precision bits (round to nearest even), for fp16 model inputs. */
export function toFloat16Bits(values: Float32Array, into = new Uint16Array(values.length)): Uint16Array {
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  for (let i = 0; i < values.length; i += 1) {
    f32[0] = values[i]!;
    const x = u32[0]!;
    const sign = (x >>> 16) & 0x8000;
    const exponent = (x >>> 23) & 0xff;
    let mantissa = x & 0x7fffff;
    if (exponent === 0xff) {
      into[i] = sign | 0x7c00 | (mantissa ? 0x200 : 0); // inf / NaN
      continue;
    }
    const e = exponent - 127 + 15;
    if (e >= 0x1f) {
      into[i] = sign | 0x7c00; // too large: inf
    } else if (e <= 0) {
      if (e < -10) {
        into[i] = sign; // too small: signed zero
        continue;
      }
      mantissa |= 0x800000; // subnormal half
      const shift = 14 - e;
      const halfMantissa = mantissa >>> shift;
      const rest = mantissa & ((1 << shift) - 1);
      const halfway = 1 << (shift - 1);
      const round = rest > halfway || (rest === halfway && (halfMantissa & 1) === 1) ? 1 : 0;
      into[i] = sign | (halfMantissa + round);
    } else {
      const halfBits = (e << 10) | (mantissa >>> 13);
      const rest = mantissa & 0x1fff;
      const round = rest > 0x1000 || (rest === 0x1000 && (halfBits & 1) === 1) ? 1 : 0;
      into[i] = sign | (halfBits + round); // a carry into the exponent is the correct rounding
    }
  }
  return into;
}

/** IEEE 754 half precision bits -> float32, for fp16 model outputs. */
export function fromFloat16Bits(bits: Uint16Array, into = new Float32Array(bits.length)): Float32Array {
  for (let i = 0; i < bits.length; i += 1) {
    const h = bits[i]!;
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >>> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) into[i] = sign * mantissa * 2 ** -24;
    else if (exponent === 0x1f) into[i] = mantissa ? Number.NaN : sign * Number.POSITIVE_INFINITY;
    else into[i] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return into;
}
