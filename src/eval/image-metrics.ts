/**
 * Image-similarity figures between a reference CT volume and a candidate (a synthetic CTA against the real CTA, a
 * denoised series against the full-dose one), in the terms the CTA-GAN / RegGAN papers report them. Pure functions
 * on HU arrays, slice-major like CtVolume.hu.
 *
 * Both volumes are clipped to [huMin, huMax] (default -1024..3071 HU, the range the networks see); R = huMax - huMin.
 * Counted voxels: all, or the body mask's; with excludeBackground, minus those where the clipped reference is huMin
 * (the reference at or below huMin), as RegGAN excludes background: Kid-Liet/Reg-GAN trainer/CycTrainer.py, MAE()
 * and PSNR(), `x,y = np.where(real != -1)` on slices scaled to [-1, 1] (-1 there is huMin here).
 * Over a set of counted voxels, with d = candidate - reference (both clipped):
 *   MAE = mean |d| HU;  NMAE = MAE / R  (RegGAN: MAE on [-1, 1] slices / 2, the same number);
 *   PSNR = 10 log10(R^2 / mean d^2) dB, Infinity when mean d^2 = 0 (RegGAN: 20 log10(1 / RMSE) on [0, 1]);
 *   mean difference = mean d HU (signed: a brightened organ shows here, noise does not).
 * Per volume: one set, every counted voxel of every slice pooled. Per slice: each slice's own figures, then the
 * mean over slices, as RegGAN and CTA-GAN average per-slice figures over their test slices; slices without counted
 * voxels are left out, and so are identical slices (mean d^2 = 0) from the PSNR mean (counted apart; Infinity if
 * every slice is identical).
 * SSIM: per slice, skimage structural_similarity (ssim.ts, the chosen window) of the clipped slices scaled to
 * [-1, 1], data range 2: RegGAN's and CTA-GAN's `measure.compare_ssim(fake_B, real_B)` on their [-1, 1] slices
 * (float images: data range 2). Computed as clip(HU) - (huMin + huMax) / 2 with data range R, the same value (SSIM
 * is unchanged when the images and the data range scale together, not when they shift: training/common.py's ssim()
 * takes the clipped HU unshifted, 0.005 lower on three LIDC-IDRI-0001 slices against a blurred noisy copy). The slice's
 * SSIM is the mean of its map inside the window's border (with a body mask: over the masked pixels there); the
 * volume's, the mean over all those pixels of all slices. excludeBackground leaves SSIM alone: RegGAN computes it
 * on the whole slice.
 * Regions: counted voxels whose reference HU (as loaded, before clipping) lies in [loHu, hiHu); pooled, per volume.
 * Identical volumes give NMAE 0, PSNR Infinity and SSIM 1.
 *
 * CTA-GAN's test code (yml-bit/CTA-GAN trainer/CycTrainer.py test(), commit a4e58a6) excludes more: it keeps only
 * pixels at or above 65% of the reference CTA's display window, reference HU >= WC - WW/2 + 0.5 + (166/255) WW,
 * sets both images to -1 elsewhere (the candidate also where it is itself below that level), then measures as
 * RegGAN. Its MAE/PSNR pixel set is a region from that HU up; the candidate's masking is not reproduced here.
 */
import type { VolumeShape } from "../dicom/ct-volume.js";
import { DEFAULT_SSIM_WINDOW, ssimMap, ssimWindowRadius, type SsimWindow } from "./ssim.js";

export interface HuRange {
  huMin: number;
  huMax: number;
}

/** The range the CTA-GAN generator and the reference models see: 12-bit CT, -1024..3071 HU. */
export const DEFAULT_HU_RANGE: HuRange = { huMin: -1024, huMax: 3071 };

/** Voxels whose reference HU lies in [loHu, hiHu) (either end may be infinite), e.g. the enhanced blood pool. */
export interface HuRegion {
  name: string;
  loHu: number;
  hiHu: number;
}

export interface MetricOptions {
  range?: HuRange;
  ssimWindow?: SsimWindow;
  /** 1 where a voxel counts (the body mask); every voxel when absent. */
  mask?: Uint8Array;
  /** RegGAN's background: voxels whose clipped reference is huMin do not count for NMAE, MAE, PSNR. */
  excludeBackground?: boolean;
  regions?: HuRegion[];
}

/** NMAE, MAE, PSNR and mean difference over a set of voxels; null figures when the set is empty. */
export interface ErrorFigures {
  voxels: number;
  nmae: number | null;
  maeHu: number | null;
  /** dB; Infinity when the voxels are identical within the HU range. */
  psnrDb: number | null;
  meanDifferenceHu: number | null;
}

export interface SliceFigures extends ErrorFigures {
  /** 0-based, in position order. */
  slice: number;
  /** Mean of the slice's SSIM map over its counted pixels; null when there are none. */
  ssim: number | null;
  ssimPixels: number;
}

export interface VolumeFigures extends ErrorFigures {
  ssim: number;
  ssimPixels: number;
}

export interface SliceMeanFigures {
  /** Slices with counted voxels: the NMAE and MAE means are over these. */
  slices: number;
  nmae: number;
  maeHu: number;
  /** Mean over the non-identical counted slices; Infinity when every counted slice is identical. */
  psnrDb: number;
  identicalSlices: number;
  ssim: number;
  /** Slices with SSIM pixels: the SSIM mean is over these. */
  ssimSlices: number;
}

export interface RegionFigures extends ErrorFigures, HuRegion {}

export interface ImageMetrics {
  perVolume: VolumeFigures;
  perSlice: SliceMeanFigures;
  slices: SliceFigures[];
  regions: RegionFigures[];
}

function checkRange(range: HuRange): void {
  if (!(Number.isFinite(range.huMin) && Number.isFinite(range.huMax) && range.huMax > range.huMin)) {
    throw new Error(`HU range [${range.huMin}, ${range.huMax}] is empty: --hu-max must exceed --hu-min`);
  }
}

function checkShape(shape: VolumeShape, ...arrays: ArrayLike<number>[]): void {
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

/** Running sums of d, |d| and d^2 over a set of voxels. */
class ErrorSums {
  voxels = 0;
  signed = 0;
  absolute = 0;
  squared = 0;

  add(d: number): void {
    this.voxels += 1;
    this.signed += d;
    this.absolute += Math.abs(d);
    this.squared += d * d;
  }

  figures(peak: number): ErrorFigures {
    if (this.voxels === 0) return { voxels: 0, nmae: null, maeHu: null, psnrDb: null, meanDifferenceHu: null };
    const mae = this.absolute / this.voxels;
    const mse = this.squared / this.voxels;
    return {
      voxels: this.voxels,
      nmae: mae / peak,
      maeHu: mae,
      psnrDb: mse === 0 ? Infinity : 10 * Math.log10((peak * peak) / mse),
      meanDifferenceHu: this.signed / this.voxels,
    };
  }
}

const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;

/** The per-slice means (see the file comment). */
function sliceMeans(slices: SliceFigures[]): SliceMeanFigures {
  const counted = slices.filter((s) => s.voxels > 0);
  const finitePsnr = counted.map((s) => s.psnrDb!).filter((p) => Number.isFinite(p));
  const withSsim = slices.filter((s) => s.ssim !== null);
  return {
    slices: counted.length,
    nmae: mean(counted.map((s) => s.nmae!)),
    maeHu: mean(counted.map((s) => s.maeHu!)),
    psnrDb: finitePsnr.length === 0 ? Infinity : mean(finitePsnr),
    identicalSlices: counted.length - finitePsnr.length,
    ssim: mean(withSsim.map((s) => s.ssim!)),
    ssimSlices: withSsim.length,
  };
}

/** Every figure of the file comment, in one pass over the slices. */
export function imageMetrics(
  reference: ArrayLike<number>,
  candidate: ArrayLike<number>,
  shape: VolumeShape,
  options: MetricOptions = {},
): ImageMetrics {
  const range = options.range ?? DEFAULT_HU_RANGE;
  const window = options.ssimWindow ?? DEFAULT_SSIM_WINDOW;
  const { mask, excludeBackground = false, regions = [] } = options;
  checkRange(range);
  checkShape(shape, reference, candidate, ...(mask ? [mask] : []));
  const { rows, columns } = shape;
  const radius = ssimWindowRadius(window);
  if (rows <= 2 * radius || columns <= 2 * radius) {
    const side = 2 * radius + 1;
    throw new Error(`SSIM needs slices of at least ${side}x${side} pixels; these are ${rows}x${columns}`);
  }
  const peak = range.huMax - range.huMin;
  const middle = (range.huMin + range.huMax) / 2;
  const plane = rows * columns;
  const x = new Float64Array(plane);
  const y = new Float64Array(plane);
  const volume = new ErrorSums();
  const regionSums = regions.map(() => new ErrorSums());
  const slices: SliceFigures[] = [];
  let ssimTotal = 0;
  let ssimPixels = 0;
  for (let k = 0; k < shape.slices; k += 1) {
    const offset = k * plane;
    const slice = new ErrorSums();
    for (let i = 0; i < plane; i += 1) {
      const raw = reference[offset + i]!;
      const r = clip(raw, range);
      const c = clip(candidate[offset + i]!, range);
      x[i] = r - middle;
      y[i] = c - middle;
      if ((mask && !mask[offset + i]) || (excludeBackground && r === range.huMin)) continue;
      const d = c - r;
      slice.add(d);
      volume.add(d);
      for (let g = 0; g < regions.length; g += 1) {
        if (raw >= regions[g]!.loHu && raw < regions[g]!.hiHu) regionSums[g]!.add(d);
      }
    }
    const map = ssimMap(x, y, rows, columns, peak, window);
    let sum = 0;
    let pixels = 0;
    for (let r = radius; r < rows - radius; r += 1) {
      for (let c = radius; c < columns - radius; c += 1) {
        if (mask && !mask[offset + r * columns + c]) continue;
        sum += map[r * columns + c]!;
        pixels += 1;
      }
    }
    ssimTotal += sum;
    ssimPixels += pixels;
    slices.push({ slice: k, ...slice.figures(peak), ssim: pixels > 0 ? sum / pixels : null, ssimPixels: pixels });
  }
  if (volume.voxels === 0) {
    throw new Error("no voxels to compare: the body mask is empty or every voxel is background (is the reference a CT in HU?)");
  }
  if (ssimPixels === 0) throw new Error("no slice has pixels to compare for SSIM (an empty body mask?)");
  return {
    perVolume: { ...volume.figures(peak), ssim: ssimTotal / ssimPixels, ssimPixels },
    perSlice: sliceMeans(slices),
    slices,
    regions: regions.map((region, g) => ({ ...region, ...regionSums[g]!.figures(peak) })),
  };
}
