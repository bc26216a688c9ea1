/**
 * Image-similarity metrics between a reference CT volume and a candidate (a synthetic CTA against the real CTA, a
 * denoised series against the full-dose one), in the terms the CTA-GAN / RegGAN papers report them. Pure functions
 * on HU arrays, slice-major like CtVolume.hu.
 *
 * Both volumes are first clipped to the HU range [huMin, huMax] (default -1024..3071, the range the networks see);
 * R = huMax - huMin. Then, over the voxels counted (all, or the body mask):
 *   NMAE = mean |candidate - reference| / R                      (RegGAN: MAE on [-1, 1] images / 2: the same thing)
 *   PSNR = 10 log10(R^2 / MSE) dB                                (RegGAN: 20 log10(1 / RMSE) on [0, 1] images)
 *   SSIM = per slice, the mean of the SSIM map, averaged over slices. The map is skimage's
 *          structural_similarity(gaussian_weights=True, data_range=R) exactly: Gaussian window sigma 1.5 truncated at
 *          3.5 sigma (11 x 11), scipy's 'reflect' border, K1 0.01, K2 0.03, sample covariance (N / (N - 1), N = 121),
 *          mean over the map without its 5-pixel border. It is computed on the clipped images minus huMin, i.e. on
 *          images normalised to [0, R] (the same value as on [0, 1] with data range 1).
 * With a body mask, NMAE and PSNR count masked voxels only, and each slice's SSIM is the mean of its map over the
 * masked pixels inside the cropped border (slices without any are left out of the average).
 * Identical volumes give NMAE 0, PSNR Infinity and SSIM 1.
 */
import type { VolumeShape } from "../dicom/ct-volume.js";

export interface HuRange {
  huMin: number;
  huMax: number;
}

/** The range the CTA-GAN generator and the reference models see: 12-bit CT, -1024..3071 HU. */
export const DEFAULT_HU_RANGE: HuRange = { huMin: -1024, huMax: 3071 };

export type SliceShape = VolumeShape;

export interface ImageMetrics {
  /** Mean absolute error over the HU range (0 = identical). */
  nmae: number;
  /** The same error in HU, for people who think in HU. */
  maeHu: number;
  /** Peak signal-to-noise ratio in dB; Infinity when the volumes are identical within the range. */
  psnrDb: number;
  /** Mean structural similarity over slices (1 = identical). */
  ssim: number;
  /** Voxels counted for NMAE and PSNR. */
  voxels: number;
  /** Slices averaged for SSIM. */
  ssimSlices: number;
}

/** skimage's structural_similarity constants with gaussian_weights=True. */
export const SSIM_SIGMA = 1.5;
export const SSIM_TRUNCATE = 3.5;
export const SSIM_K1 = 0.01;
export const SSIM_K2 = 0.03;
/** Window radius: int(3.5 * 1.5 + 0.5) = 5, so 11 x 11. */
export const SSIM_RADIUS = Math.trunc(SSIM_TRUNCATE * SSIM_SIGMA + 0.5);

function checkRange(range: HuRange): void {
  if (!(Number.isFinite(range.huMin) && Number.isFinite(range.huMax) && range.huMax > range.huMin)) {
    throw new Error(`HU range [${range.huMin}, ${range.huMax}] is empty: --hu-max must exceed --hu-min`);
  }
}

function checkShape(shape: SliceShape, ...arrays: ArrayLike<number>[]): void {
  const voxels = shape.slices * shape.rows * shape.columns;
  for (const array of arrays) {
    if (array.length !== voxels) {
      throw new Error(
        `an array has ${array.length} values where ${shape.slices}x${shape.rows}x${shape.columns} = ${voxels} are expected`,
      );
    }
  }
}

const clip = (value: number, range: HuRange): number => Math.min(range.huMax, Math.max(range.huMin, value));

/** Mean |a - b| and mean (a - b)^2 over the counted voxels, both clipped to the range (checked first). */
function meanErrors(
  reference: ArrayLike<number>,
  candidate: ArrayLike<number>,
  range: HuRange,
  mask: Uint8Array | undefined,
): { absolute: number; squared: number; voxels: number } {
  checkRange(range);
  let absolute = 0;
  let squared = 0;
  let voxels = 0;
  for (let i = 0; i < reference.length; i += 1) {
    if (mask && !mask[i]) continue;
    const d = clip(candidate[i]!, range) - clip(reference[i]!, range);
    absolute += Math.abs(d);
    squared += d * d;
    voxels += 1;
  }
  if (voxels === 0) throw new Error("no voxels to compare: the body mask is empty (is the reference a CT in HU?)");
  return { absolute: absolute / voxels, squared: squared / voxels, voxels };
}

/** NMAE = mean |candidate - reference| / (huMax - huMin), both clipped to the range. */
export function normalizedMeanAbsoluteError(
  reference: ArrayLike<number>,
  candidate: ArrayLike<number>,
  range: HuRange = DEFAULT_HU_RANGE,
  mask?: Uint8Array,
): number {
  return meanErrors(reference, candidate, range, mask).absolute / (range.huMax - range.huMin);
}

/** PSNR = 10 log10((huMax - huMin)^2 / MSE) dB, both clipped to the range; Infinity when MSE is 0. */
export function peakSignalToNoiseRatio(
  reference: ArrayLike<number>,
  candidate: ArrayLike<number>,
  range: HuRange = DEFAULT_HU_RANGE,
  mask?: Uint8Array,
): number {
  const mse = meanErrors(reference, candidate, range, mask).squared;
  const peak = range.huMax - range.huMin;
  return mse === 0 ? Infinity : 10 * Math.log10((peak * peak) / mse);
}

/** scipy.ndimage's normalised 1-D Gaussian kernel (sigma, radius = int(truncate * sigma + 0.5)). */
export function gaussianKernel(sigma = SSIM_SIGMA, radius = SSIM_RADIUS): Float64Array {
  const kernel = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let x = -radius; x <= radius; x += 1) {
    const w = Math.exp((-0.5 * x * x) / (sigma * sigma));
    kernel[x + radius] = w;
    sum += w;
  }
  for (let i = 0; i < kernel.length; i += 1) kernel[i] = kernel[i]! / sum;
  return kernel;
}

/** scipy's 'reflect' border (d c b a | a b c d | d c b a), for any offset. */
function reflectIndex(i: number, n: number): number {
  const period = 2 * n;
  let j = ((i % period) + period) % period;
  if (j >= n) j = period - 1 - j;
  return j;
}

/** For offsets -radius .. n - 1 + radius, the reflected index (shifted by radius). */
function reflectTable(n: number, radius: number): Int32Array {
  const table = new Int32Array(n + 2 * radius);
  for (let i = 0; i < table.length; i += 1) table[i] = reflectIndex(i - radius, n);
  return table;
}

/** Separable filtering of one rows x columns image: along columns (axis 0) then rows (axis 1), as scipy does. */
function gaussianFilter2d(image: Float64Array, rows: number, columns: number, kernel: Float64Array): Float64Array {
  const radius = (kernel.length - 1) / 2;
  const rowIndex = reflectTable(rows, radius);
  const columnIndex = reflectTable(columns, radius);
  const along0 = new Float64Array(rows * columns);
  for (let r = 0; r < rows; r += 1) {
    const row = r * columns;
    for (let t = 0; t < kernel.length; t += 1) {
      const weight = kernel[t]!;
      const from = rowIndex[r + t]! * columns;
      for (let c = 0; c < columns; c += 1) along0[row + c] = along0[row + c]! + weight * image[from + c]!;
    }
  }
  const out = new Float64Array(rows * columns);
  for (let r = 0; r < rows; r += 1) {
    const row = r * columns;
    for (let c = 0; c < columns; c += 1) {
      let sum = 0;
      for (let t = 0; t < kernel.length; t += 1) sum += kernel[t]! * along0[row + columnIndex[c + t]!]!;
      out[row + c] = sum;
    }
  }
  return out;
}

/**
 * The SSIM map of one slice pair (rows x columns, already clipped and offset), as skimage computes it with
 * gaussian_weights=True and the given data range.
 */
export function ssimMap(x: Float64Array, y: Float64Array, rows: number, columns: number, dataRange: number): Float64Array {
  const kernel = gaussianKernel();
  const n = rows * columns;
  const xx = new Float64Array(n);
  const yy = new Float64Array(n);
  const xy = new Float64Array(n);
  for (let i = 0; i < n; i += 1) {
    xx[i] = x[i]! * x[i]!;
    yy[i] = y[i]! * y[i]!;
    xy[i] = x[i]! * y[i]!;
  }
  const ux = gaussianFilter2d(x, rows, columns, kernel);
  const uy = gaussianFilter2d(y, rows, columns, kernel);
  const uxx = gaussianFilter2d(xx, rows, columns, kernel);
  const uyy = gaussianFilter2d(yy, rows, columns, kernel);
  const uxy = gaussianFilter2d(xy, rows, columns, kernel);
  const windowVoxels = kernel.length * kernel.length;
  const covarianceNorm = windowVoxels / (windowVoxels - 1);
  const c1 = (SSIM_K1 * dataRange) ** 2;
  const c2 = (SSIM_K2 * dataRange) ** 2;
  const map = new Float64Array(n);
  for (let i = 0; i < n; i += 1) {
    const mx = ux[i]!;
    const my = uy[i]!;
    const vx = covarianceNorm * (uxx[i]! - mx * mx);
    const vy = covarianceNorm * (uyy[i]! - my * my);
    const vxy = covarianceNorm * (uxy[i]! - mx * my);
    map[i] = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
  }
  return map;
}

/**
 * Mean SSIM over slices (see the file comment). Returns the mean and how many slices it averaged; a slice needs more
 * than 2 * 5 rows and columns (skimage refuses images smaller than the window).
 */
export function structuralSimilarity(
  reference: ArrayLike<number>,
  candidate: ArrayLike<number>,
  shape: SliceShape,
  range: HuRange = DEFAULT_HU_RANGE,
  mask?: Uint8Array,
): { ssim: number; slices: number } {
  checkRange(range);
  checkShape(shape, reference, candidate, ...(mask ? [mask] : []));
  const { rows, columns } = shape;
  const window = 2 * SSIM_RADIUS + 1;
  if (rows < window || columns < window) {
    throw new Error(`SSIM needs slices of at least ${window}x${window} pixels; these are ${rows}x${columns}`);
  }
  const plane = rows * columns;
  const dataRange = range.huMax - range.huMin;
  const x = new Float64Array(plane);
  const y = new Float64Array(plane);
  let total = 0;
  let counted = 0;
  for (let k = 0; k < shape.slices; k += 1) {
    const offset = k * plane;
    for (let i = 0; i < plane; i += 1) {
      x[i] = clip(reference[offset + i]!, range) - range.huMin;
      y[i] = clip(candidate[offset + i]!, range) - range.huMin;
    }
    const map = ssimMap(x, y, rows, columns, dataRange);
    let sum = 0;
    let pixels = 0;
    for (let r = SSIM_RADIUS; r < rows - SSIM_RADIUS; r += 1) {
      for (let c = SSIM_RADIUS; c < columns - SSIM_RADIUS; c += 1) {
        if (mask && !mask[offset + r * columns + c]) continue;
        sum += map[r * columns + c]!;
        pixels += 1;
      }
    }
    if (pixels === 0) continue;
    total += sum / pixels;
    counted += 1;
  }
  if (counted === 0) throw new Error("no slice has pixels to compare for SSIM (an empty body mask?)");
  return { ssim: total / counted, slices: counted };
}

/** NMAE, PSNR and SSIM between two volumes of the same shape, over all voxels or the mask's. */
export function imageMetrics(
  reference: ArrayLike<number>,
  candidate: ArrayLike<number>,
  shape: SliceShape,
  range: HuRange = DEFAULT_HU_RANGE,
  mask?: Uint8Array,
): ImageMetrics {
  checkShape(shape, reference, candidate, ...(mask ? [mask] : []));
  const { absolute, squared: mse, voxels } = meanErrors(reference, candidate, range, mask);
  const peak = range.huMax - range.huMin;
  const { ssim, slices } = structuralSimilarity(reference, candidate, shape, range, mask);
  return {
    nmae: absolute / peak,
    maeHu: absolute,
    psnrDb: mse === 0 ? Infinity : 10 * Math.log10((peak * peak) / mse),
    ssim,
    voxels,
    ssimSlices: slices,
  };
}
