/**
 * The SSIM map of one slice pair, exactly as scikit-image's structural_similarity computes it (checked against
 * skimage 0.19.3 / scipy 1.10.1 in tests/unit/image-metrics.test.ts), with one of two windows:
 *   uniform7   win_size=7, gaussian_weights=False: scipy.ndimage.uniform_filter (size 7) over the slice. skimage's
 *              default, so compare_ssim(fake, real) in the RegGAN and CTA-GAN test code; training/common.py's too.
 *   gaussian11 gaussian_weights=True, sigma=1.5: scipy.ndimage.gaussian_filter truncated at 3.5 sigma, 11 x 11.
 * Both: scipy's 'reflect' border, K1 0.01, K2 0.03, sample covariance (N / (N - 1), N = 49 or 121 window pixels);
 * the slice's SSIM is the mean of the map without its (window - 1) / 2 border (3 or 5 pixels). How the images are
 * scaled before (the data range, the clipping) is image-metrics.ts's business.
 */

export type SsimWindow = "uniform7" | "gaussian11";
export const SSIM_WINDOWS: readonly SsimWindow[] = ["uniform7", "gaussian11"];
/** The papers' code and our model cards: skimage's default window. */
export const DEFAULT_SSIM_WINDOW: SsimWindow = "uniform7";

export const SSIM_K1 = 0.01;
export const SSIM_K2 = 0.03;
/** skimage's constants with gaussian_weights=True. */
export const SSIM_SIGMA = 1.5;
export const SSIM_TRUNCATE = 3.5;
/** skimage's default win_size, the uniform window's width. */
export const UNIFORM_WINDOW_SIZE = 7;

/** Half the window's width: the border the mean leaves out. uniform7: 3; gaussian11: int(3.5 * 1.5 + 0.5) = 5. */
export function ssimWindowRadius(window: SsimWindow): number {
  return window === "uniform7" ? (UNIFORM_WINDOW_SIZE - 1) / 2 : Math.trunc(SSIM_TRUNCATE * SSIM_SIGMA + 0.5);
}

/** How the report names the window. */
export function describeSsimWindow(window: SsimWindow): string {
  return window === "uniform7" ? "uniform 7x7 window" : "Gaussian 11x11 window, sigma 1.5";
}

/** scipy.ndimage's normalised 1-D Gaussian kernel (sigma, radius = int(truncate * sigma + 0.5)). */
export function gaussianKernel(sigma = SSIM_SIGMA, radius = ssimWindowRadius("gaussian11")): Float64Array {
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
 * scipy.ndimage.uniform_filter1d on `count` lines of `length` values, `stride` apart along the line and `step`
 * apart between lines, as scipy computes it (NI_UniformFilter1D): a running sum over the reflected line (the first
 * window's values, then + entering - leaving), each output the sum / size. The same additions in the same order:
 * bit-identical to scipy 1.10.1 (a direct 7-term sum differs in the last bits).
 */
function uniformFilter1d(
  input: Float64Array,
  output: Float64Array,
  length: number,
  stride: number,
  count: number,
  step: number,
  size: number,
): void {
  const before = Math.trunc(size / 2);
  const index = reflectTable(length, before);
  const line = new Float64Array(length + size - 1);
  for (let l = 0; l < count; l += 1) {
    const base = l * step;
    for (let i = 0; i < line.length; i += 1) line[i] = input[base + index[i]! * stride]!;
    let sum = 0;
    for (let i = 0; i < size; i += 1) sum += line[i]!;
    output[base] = sum / size;
    for (let i = 1; i < length; i += 1) {
      sum += line[i + size - 1]! - line[i - 1]!;
      output[base + i * stride] = sum / size;
    }
  }
}

/** scipy.ndimage.uniform_filter(image, size): along columns (axis 0), then along rows (axis 1). */
function uniformFilter2d(image: Float64Array, rows: number, columns: number, size: number): Float64Array {
  const along0 = new Float64Array(rows * columns);
  uniformFilter1d(image, along0, rows, columns, columns, 1, size);
  const out = new Float64Array(rows * columns);
  uniformFilter1d(along0, out, columns, 1, rows, columns, size);
  return out;
}

/**
 * The SSIM map of one slice pair (rows x columns, already scaled), as skimage's structural_similarity computes it
 * with this window and data range.
 */
export function ssimMap(
  x: Float64Array,
  y: Float64Array,
  rows: number,
  columns: number,
  dataRange: number,
  window: SsimWindow = DEFAULT_SSIM_WINDOW,
): Float64Array {
  const kernel = window === "gaussian11" ? gaussianKernel() : undefined;
  const filter = (image: Float64Array): Float64Array =>
    kernel ? gaussianFilter2d(image, rows, columns, kernel) : uniformFilter2d(image, rows, columns, UNIFORM_WINDOW_SIZE);
  const n = rows * columns;
  const xx = new Float64Array(n);
  const yy = new Float64Array(n);
  const xy = new Float64Array(n);
  for (let i = 0; i < n; i += 1) {
    xx[i] = x[i]! * x[i]!;
    yy[i] = y[i]! * y[i]!;
    xy[i] = x[i]! * y[i]!;
  }
  const ux = filter(x);
  const uy = filter(y);
  const uxx = filter(xx);
  const uyy = filter(yy);
  const uxy = filter(xy);
  const windowPixels = (2 * ssimWindowRadius(window) + 1) ** 2;
  const covarianceNorm = windowPixels / (windowPixels - 1);
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
