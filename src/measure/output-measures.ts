/**
 * What a model's output must satisfy before it is stored, measured slice by slice as the output streams in (nothing
 * is read back from Orthanc): on the input and output HU of each slice, with the masks the probe made.
 * - bodyVoxelsChangedPercent: body voxels whose HU moved by more than N HU, per cent of the body.
 * - tissueMeanChangeHu: the mean change of soft tissue (input -20..120 HU, in the body, not lung) outside the blood
 *   pool, which is taken as the mediastinum between the lungs (heart, great vessels) and 30 mm around the aorta the
 *   probe found (mediastinum.ts). A synthetic CTA may brighten the blood pool; liver, spleen and muscle must stay as they were.
 * - tissueBrightenedPercent: the share of that same soft tissue brightened by more than N HU: a false enhancement
 *   confined to a blob (in the liver, a kidney, a muscle) that the mean over all tissue dilutes.
 * - tissueBrightenedSliceCm2: the largest area of that soft tissue brightened by more than N HU on one slice: a false
 *   enhancement a few centimetres tall, which the share of the whole volume dilutes (round 5 of Syn-CTA lit 35 cm2
 *   beside the aorta at LIDC-IDRI-0002's gastric fundus and spleen, 0.8% of the volume's soft tissue).
 * - tissueBrightenedRegionMl: the volume of the largest connected region (in 3D) of that soft tissue brightened by
 *   more than N HU that does not join the blood pool's brightening (a region reaching a brightened voxel of the
 *   blood pool is the pool's own: an aorta the probe's 30 mm disk only half covers; a false enhancement beside it is
 *   the per-slice area's to catch): a false enhancement away from the vessels that stays under the per-slice area on
 *   every slice but runs down many slices (round 6 of Syn-CTA lit LIDC-IDRI-0002's left shoulder muscles over 108
 *   slices, 7.6 cm2 at most on one).
 * - noiseRatio: the output's noise over the input's, measured on the same homogeneous boxes as the probe's.
 * - findings: how many findings lie in the lungs (set by the findings plan).
 */
import type { CtVolume } from "../dicom/ct-volume.js";
import type { OutputCheck } from "../models/manifest.js";
import type { ProbedVolume } from "./anatomy-probe.js";
import { homogeneousBoxes } from "./blood-and-noise.js";
import { boxStats } from "./box-sums.js";
import { largestRegion, VoxelSet } from "./connected-regions.js";
import { mediastinumRows } from "./mediastinum.js";

export interface CheckVerdict {
  measure: OutputCheck["measure"];
  value: number;
  min?: number;
  max?: number;
  passed: boolean;
  /** In words, with the figure and the limit: "tissue outside the blood pool changed by +148 HU on average (limit -15..15)". */
  text: string;
}

const TISSUE_HU: [number, number] = [-20, 120];
const AORTA_EXCLUSION_MM = 30;
/** Output voxels are measured on every other row and column. */
const MEASURE_STRIDE = 2;

const sign = (v: number): string => (v > 0 ? `+${v}` : String(v));
const round1 = (v: number): number => Math.round(v * 10) / 10;

/** Accumulates the measures over output slices as they come; `verdicts()` judges them against the checks. */
export class OutputMeasures {
  private bodyVoxels = 0;
  private changed = 0;
  private tissueSum = 0;
  private tissueCount = 0;
  private tissueBrightened = 0;
  /** The slice with the most soft tissue brightened over sliceOverHu: its index and its measured voxel count. */
  private sliceBrightenedMost = { slice: -1, voxels: 0 };
  /** Measured voxels of soft tissue brightened over regionOverHu, on the measured grid (every other row and column). */
  private readonly regionVoxels: VoxelSet | undefined;
  /** The same for the soft tissue (blood) inside the blood pool: a region joining these is the pool's. */
  private readonly poolVoxels: VoxelSet | undefined;
  private readonly regionOverHu: number;
  private readonly noiseIn: number[] = [];
  private readonly noiseOut: number[] = [];
  private findingsInLungs: number | undefined;
  private findingsOutside = 0;
  private readonly plane: number;
  private readonly changeOverHu: number;
  private readonly brightenedOverHu: number;
  private readonly sliceOverHu: number;
  private readonly measuresVoxels: boolean;
  /** The coarse column of each full-resolution column. */
  private readonly coarseColumn: Int32Array;

  constructor(private readonly volume: CtVolume, private readonly probed: ProbedVolume, private readonly checks: readonly OutputCheck[]) {
    this.plane = volume.rows * volume.columns;
    const body = checks.find((c) => c.measure === "bodyVoxelsChangedPercent");
    const brightened = checks.find((c) => c.measure === "tissueBrightenedPercent");
    const perSlice = checks.find((c) => c.measure === "tissueBrightenedSliceCm2");
    const region = checks.find((c) => c.measure === "tissueBrightenedRegionMl");
    this.measuresVoxels = checks.some((c) =>
      ["bodyVoxelsChangedPercent", "tissueMeanChangeHu", "tissueBrightenedPercent", "tissueBrightenedSliceCm2", "tissueBrightenedRegionMl"].includes(c.measure));
    this.changeOverHu = body?.measure === "bodyVoxelsChangedPercent" ? body.overHu : 100;
    this.brightenedOverHu = brightened?.measure === "tissueBrightenedPercent" ? brightened.overHu : 100;
    this.sliceOverHu = perSlice?.measure === "tissueBrightenedSliceCm2" ? perSlice.overHu : 100;
    this.regionOverHu = region?.measure === "tissueBrightenedRegionMl" ? region.overHu : 100;
    this.regionVoxels = region ? new VoxelSet() : undefined;
    this.poolVoxels = region ? new VoxelSet() : undefined;
    const { coarse } = probed;
    this.coarseColumn = Int32Array.from({ length: volume.columns }, (_, c) => Math.min(coarse.columns - 1, (c / coarse.factor) | 0));
  }

  /**
   * Output slices [first, first + values.length / plane), HU; the input is still `volume.hu`. Every other row and
   * column is measured (a quarter of the voxels: the same shares and means to a tenth, at a quarter of the CPU the
   * model's worker would otherwise lose to it); the noise boxes use every pixel.
   */
  addSlices(first: number, values: Float32Array): void {
    for (let n = 0; n < values.length / this.plane; n += 1) {
      const k = first + n;
      const input = this.volume.hu.subarray(k * this.plane, (k + 1) * this.plane);
      const output = values.subarray(n * this.plane, (n + 1) * this.plane);
      if (this.measuresVoxels) this.addVoxels(k, input, output);
      if (this.checks.some((check) => check.measure === "noiseRatio")) this.addNoise(k, input, output);
    }
  }

  /** The voxel measures of slice k: body voxels changed, and the soft tissue's change outside the blood pool. */
  private addVoxels(k: number, input: Float32Array, output: Float32Array): void {
    const { coarse, anatomy } = this.probed;
    const { rows, columns } = this.volume;
    const coarsePlane = coarse.rows * coarse.columns;
    const limit = this.changeOverHu;
    const pool = this.bloodPoolExclusion(k);
    let sliceBrightened = 0;
    const grid = this.measuredGrid();
    for (let r = 0; r < rows; r += MEASURE_STRIDE) {
      const coarseRow = k * coarsePlane + Math.min(coarse.rows - 1, (r / coarse.factor) | 0) * coarse.columns;
      const [m0, m1, a0, a1] = pool(r);
      for (let c = 0; c < columns; c += MEASURE_STRIDE) {
        const at = coarseRow + this.coarseColumn[c]!;
        if (!anatomy.body[at]) continue;
        const i = r * columns + c;
        const before = input[i]!;
        const change = output[i]! - before;
        this.bodyVoxels += 1;
        if (change > limit || change < -limit) this.changed += 1;
        if (before < TISSUE_HU[0] || before > TISSUE_HU[1] || anatomy.lungs[at]) continue;
        const at3d = (k * grid.rows + r / MEASURE_STRIDE) * grid.columns + c / MEASURE_STRIDE;
        if ((c >= m0 && c <= m1) || (c >= a0 && c <= a1)) {
          if (change > this.regionOverHu) this.poolVoxels?.add(at3d);
          continue;
        }
        this.tissueSum += change;
        this.tissueCount += 1;
        if (change > this.brightenedOverHu) this.tissueBrightened += 1;
        if (change > this.sliceOverHu) sliceBrightened += 1;
        if (change > this.regionOverHu) this.regionVoxels?.add(at3d);
      }
    }
    if (sliceBrightened > this.sliceBrightenedMost.voxels) this.sliceBrightenedMost = { slice: k, voxels: sliceBrightened };
  }

  /** The grid of measured voxels: every slice, every other row and column. */
  private measuredGrid(): { slices: number; rows: number; columns: number } {
    const { slices, rows, columns } = this.volume;
    return { slices, rows: Math.ceil(rows / MEASURE_STRIDE), columns: Math.ceil(columns / MEASURE_STRIDE) };
  }

  /** For the findings plan: how many findings the lung gating kept, and how many it dropped. */
  setFindings(inLungs: number, outside: number): void {
    this.findingsInLungs = inLungs;
    this.findingsOutside = outside;
  }

  verdicts(): CheckVerdict[] {
    return this.checks.map((check) => {
      switch (check.measure) {
        case "bodyVoxelsChangedPercent": {
          const value = round1((100 * this.changed) / Math.max(1, this.bodyVoxels));
          return { measure: check.measure, value, max: check.max, passed: value <= check.max,
            text: `${value}% of body voxels changed by more than ${check.overHu} HU (limit ${check.max}%)` };
        }
        case "tissueMeanChangeHu": {
          const value = round1(this.tissueCount > 0 ? this.tissueSum / this.tissueCount : 0);
          return { measure: check.measure, value, min: check.min, max: check.max, passed: value >= check.min && value <= check.max,
            text: `soft tissue outside the blood pool changed by ${sign(value)} HU on average (limit ${check.min}..${check.max} HU)` };
        }
        case "tissueBrightenedPercent": {
          const value = round1((100 * this.tissueBrightened) / Math.max(1, this.tissueCount));
          return { measure: check.measure, value, max: check.max, passed: value <= check.max,
            text: `${value}% of soft tissue outside the blood pool brightened by more than ${check.overHu} HU (limit ${check.max}%)` };
        }
        case "tissueBrightenedSliceCm2": {
          const [rowMm, columnMm] = this.volume.pixelSpacing;
          const { slice, voxels } = this.sliceBrightenedMost;
          const value = round1((voxels * MEASURE_STRIDE * MEASURE_STRIDE * rowMm * columnMm) / 100);
          return { measure: check.measure, value, max: check.max, passed: value <= check.max,
            text: `${value} cm2 of soft tissue outside the blood pool brightened by more than ${check.overHu} HU on one slice` +
              `${slice >= 0 ? ` (slice ${slice + 1} of ${this.volume.slices})` : ""} (limit ${check.max} cm2)` };
        }
        case "tissueBrightenedRegionMl": {
          const [rowMm, columnMm] = this.volume.pixelSpacing;
          const region = this.regionVoxels ? largestRegion(this.regionVoxels, this.measuredGrid(), this.poolVoxels) : { voxels: 0, firstSlice: -1, lastSlice: -1 };
          const voxelMl = (MEASURE_STRIDE * rowMm * MEASURE_STRIDE * columnMm * this.volume.sliceSpacing) / 1000;
          const value = round1(region.voxels * voxelMl);
          return { measure: check.measure, value, max: check.max, passed: value <= check.max,
            text: `${value} ml of soft tissue outside the blood pool brightened by more than ${check.overHu} HU in one connected region not joining the blood pool` +
              `${region.voxels > 0 ? ` (slices ${region.firstSlice + 1}-${region.lastSlice + 1} of ${this.volume.slices})` : ""} (limit ${check.max} ml)` };
        }
        case "noiseRatio": {
          const median = (v: number[]): number => [...v].sort((a, b) => a - b)[v.length >> 1] ?? Number.NaN;
          const value = Math.round((median(this.noiseOut) / median(this.noiseIn)) * 100) / 100;
          return { measure: check.measure, value, max: check.max, passed: value <= check.max,
            text: `measured noise ${round1(median(this.noiseIn))} -> ${round1(median(this.noiseOut))} HU, ratio ${value} (limit ${check.max})` };
        }
        case "findings": {
          const value = this.findingsInLungs ?? 0;
          return { measure: check.measure, value, max: check.max, passed: value <= check.max,
            text: `${value} finding(s) in the lungs (limit ${check.max}: more means the detector misfired)` +
              (this.findingsOutside > 0 ? `; ${this.findingsOutside} outside the lungs dropped` : "") };
        }
      }
    });
  }

  /**
   * The blood pool of slice k (the mediastinum, row by row: mediastinum.ts; and a disk around the aorta of the nearest
   * probe slice), as a function of the full-resolution row giving the two column ranges it covers there:
   * [m0, m1, a0, a1] (empty when the start exceeds the end).
   */
  private bloodPoolExclusion(k: number): (r: number) => [number, number, number, number] {
    const { coarse, anatomy, bloodAndNoise } = this.probed;
    const coarsePlane = coarse.rows * coarse.columns;
    const spans = mediastinumRows({ rows: coarse.rows, columns: coarse.columns,
      lungs: anatomy.lungs.subarray(k * coarsePlane, (k + 1) * coarsePlane), body: anatomy.body.subarray(k * coarsePlane, (k + 1) * coarsePlane) });
    const f = coarse.factor;
    const nearest = bloodAndNoise.bloodPoolSlices.reduce<(typeof bloodAndNoise.bloodPoolSlices)[number] | undefined>(
      (best, b) => (!best || Math.abs(b.slice - k) < Math.abs(best.slice - k) ? b : best), undefined);
    const aorta = nearest && Math.abs(nearest.slice - k) * this.volume.sliceSpacing <= 20 ? nearest : undefined;
    const [rowMm, columnMm] = this.volume.pixelSpacing;
    const radius = AORTA_EXCLUSION_MM;
    return (r) => {
      const [c0, c1] = spans[Math.min(coarse.rows - 1, (r / f) | 0)]!;
      const [m0, m1] = c0 <= c1 ? [c0 * f, c1 * f + f - 1] : [1, 0];
      const dy = aorta ? (r - aorta.row) * rowMm : radius + 1;
      if (!aorta || Math.abs(dy) > radius) return [m0, m1, 1, 0];
      const half = Math.sqrt(radius * radius - dy * dy) / columnMm;
      return [m0, m1, aorta.column - half, aorta.column + half];
    };
  }

  /** Noise of input and output on the homogeneous boxes of the probe's sampled slices. */
  private addNoise(k: number, input: Float32Array, output: Float32Array): void {
    const sampled = this.probed.bloodAndNoise.noiseSlices;
    if (!sampled.includes(k)) return;
    const { columns } = this.volume;
    for (const box of homogeneousBoxes(this.volume, k, input, this.probed)) {
      this.noiseIn.push(box.sd);
      this.noiseOut.push(boxStats(output, columns, box.row, box.column, box.half).sd);
    }
  }
}
