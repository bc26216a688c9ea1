/**
 * On sampled full-resolution slices (every ~15 mm where the body is): image noise and the blood pool's HU.
 * - Noise: the median standard deviation of small boxes (6 x 6 mm) of homogeneous fat (mean -150..-50 HU), and of
 *   soft tissue (mean 20..80 HU). Structure edges inflate a few boxes; the median ignores them. The noise depends on
 *   the reconstruction kernel as much as on the dose (README, "How a series is chosen").
 * - Blood pool: the aorta lies just in front of the spine. Where a slice has a spine (bone above 200 HU near the
 *   posterior midline), the brightest homogeneous 10 x 10 mm box in a window just in front of the vertebral body
 *   (and not behind a cortical-bone wall, which would put it inside a vertebra) is taken as the slice's blood value;
 *   the median over slices is the series'. Non-contrast blood is 30-60 HU, arterial-phase aorta 200-400 HU.
 * Boxes are summed through integral images (box-sums.ts), so a slice costs a few milliseconds.
 */
import type { CtVolume } from "../dicom/ct-volume.js";
import { turnTaker } from "../event-loop.js";
import type { BodyAndLungs } from "./body-and-lungs.js";
import { BoxSums, boxStats } from "./box-sums.js";
import { fillHoles } from "./body-mask.js";
import type { CoarseVolume } from "./coarse-volume.js";

const SAMPLE_EVERY_MM = 15;
const FAT_HU: [number, number] = [-150, -50];
const TISSUE_HU: [number, number] = [20, 80];
/** Below this a pixel is air or lung: a box holding one is at an edge, not in homogeneous tissue. */
export const AIR_HU = -200;
/** Trabecular bone, blurred by thick slices, stays above this; the cortex far above. */
const BONE_HU = 150;
/** Cortical bone: contrast-filled vessels stay below it. */
const WALL_HU = 650;
/** Without lungs, a slice of at least this cross-section is the trunk (abdomen, pelvis), not a head or neck. */
export const TRUNK_MIN_CM2 = 350;

export interface BloodAndNoise {
  /** Median SD of homogeneous fat boxes, HU; undefined when too few were found. */
  fatNoiseHu: number | undefined;
  /** Median SD of homogeneous soft-tissue boxes, HU. */
  tissueNoiseHu: number | undefined;
  /** The blood pool's HU (median over slices with a spine), or undefined when no slice had one. */
  bloodPoolHu: number | undefined;
  /** The slices the noise was measured on (every ~15 mm with a body). */
  noiseSlices: number[];
  /** Slices the blood pool was measured on, and the per-slice values (for the timeline and for tests). */
  bloodPoolSlices: { slice: number; hu: number; row: number; column: number }[];
}

const median = (values: number[]): number | undefined => {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** A homogeneous box of the noise measurement: where it is, its half-size, its mean and SD, and what it holds. */
export interface NoiseBox {
  row: number;
  column: number;
  half: number;
  mean: number;
  sd: number;
  kind: "fat" | "tissue";
}

/** Whether full-resolution pixel (r, c) of slice k lies in the coarse body mask. */
function bodyTest(coarse: CoarseVolume, anatomy: BodyAndLungs): (k: number, r: number, c: number) => boolean {
  const coarsePlane = coarse.rows * coarse.columns;
  return (k, r, c) => {
    const cr = Math.min(coarse.rows - 1, (r / coarse.factor) | 0);
    const cc = Math.min(coarse.columns - 1, (c / coarse.factor) | 0);
    return anatomy.body[k * coarsePlane + cr * coarse.columns + cc] === 1;
  };
}

/**
 * The noise boxes of slice k: 6 x 6 mm on a 6 mm grid inside the body, without air or lung, whose mean is fat or
 * soft tissue. `slice` is slice k of the volume (the input; an output is measured on the input's boxes).
 */
export function homogeneousBoxes(
  volume: CtVolume,
  k: number,
  slice: Float32Array,
  probed: { coarse: CoarseVolume; anatomy: BodyAndLungs },
): NoiseBox[] {
  const inBody = bodyTest(probed.coarse, probed.anatomy);
  const h = Math.max(1, Math.round(3 / volume.pixelSpacing[1]));
  const boxes: NoiseBox[] = [];
  for (let r = h; r < volume.rows - h; r += 2 * h + 1) {
    for (let c = h; c < volume.columns - h; c += 2 * h + 1) {
      if (!inBody(k, r, c)) continue;
      const box = boxStats(slice, volume.columns, r, c, h, AIR_HU);
      if (box.marked > 0) continue; // air or lung in it: an edge, not noise
      const kind = box.mean >= FAT_HU[0] && box.mean <= FAT_HU[1] ? "fat"
        : box.mean >= TISSUE_HU[0] && box.mean <= TISSUE_HU[1] ? "tissue" : undefined;
      if (kind) boxes.push({ row: r, column: c, half: h, mean: box.mean, sd: box.sd, kind });
    }
  }
  return boxes;
}

export async function bloodAndNoise(volume: CtVolume, coarse: CoarseVolume, anatomy: BodyAndLungs): Promise<BloodAndNoise> {
  const { rows, columns } = volume;
  const plane = rows * columns;
  const [rowMm, columnMm] = volume.pixelSpacing;
  const inBody = bodyTest(coarse, anatomy);
  const step = Math.max(1, Math.round(SAMPLE_EVERY_MM / volume.sliceSpacing));
  const fatSd: number[] = [];
  const tissueSd: number[] = [];
  const noiseSlices: number[] = [];
  const blood: BloodAndNoise["bloodPoolSlices"] = [];
  // +x is the patient's left; the row direction's x decides which way the columns run.
  const leftward = volume.imageOrientationPatient[0] >= 0 ? 1 : -1;
  const midlineColumn = Math.round((anatomy.midlineXMm - volume.imagePositionPatient[0]![0]) / (columnMm * leftward));
  const takeTurn = turnTaker();
  for (let k = Math.floor(step / 2); k < volume.slices; k += step) {
    const area = anatomy.bodyAreaCm2[k] ?? 0;
    if (area < 20) continue;
    await takeTurn();
    noiseSlices.push(k);
    const slice = volume.hu.subarray(k * plane, (k + 1) * plane) as Float32Array;
    const boxes = homogeneousBoxes(volume, k, slice, { coarse, anatomy });
    const sliceFat = boxes.filter((b) => b.kind === "fat").map((b) => b.sd);
    fatSd.push(...sliceFat);
    tissueSd.push(...boxes.filter((b) => b.kind === "tissue").map((b) => b.sd));
    // Blood is as homogeneous as the image's noise allows: a sharp kernel's noise is 3x a standard one's.
    const homogeneousSd = Math.max(45, 1.5 * (median(sliceFat) ?? 0));
    // A head or neck has no aorta in front of its spine: only trunk slices (lungs, or a trunk's cross-section).
    const trunk = (anatomy.lungAreaCm2[k] ?? 0) >= 5 || area >= TRUNK_MIN_CM2;
    const found = trunk && bloodPool(slice, rows, columns, midlineColumn, leftward, rowMm, columnMm, (r, c) => inBody(k, r, c), homogeneousSd);
    if (found) blood.push({ slice: k, ...found });
  }
  return {
    fatNoiseHu: fatSd.length >= 20 ? median(fatSd) : undefined,
    tissueNoiseHu: tissueSd.length >= 20 ? median(tissueSd) : undefined,
    noiseSlices,
    bloodPoolHu: median(blood.map((b) => b.hu)),
    bloodPoolSlices: blood,
  };
}

/** The brightest homogeneous box in front of the vertebral body on one slice, or undefined without a spine. */
function bloodPool(
  slice: Float32Array,
  rows: number,
  columns: number,
  midline: number,
  leftward: number,
  rowMm: number,
  columnMm: number,
  inBody: (r: number, c: number) => boolean,
  homogeneousSd: number,
): { hu: number; row: number; column: number } | undefined {
  const px = (v: number): number => Math.round(v / columnMm);
  const py = (v: number): number => Math.round(v / rowMm);
  // The spine: bone within 25 mm of the midline, in the posterior half of the body's rows.
  let top = rows;
  let bottom = -1;
  for (let r = 0; r < rows; r += 1) {
    if (inBody(r, midline)) {
      top = Math.min(top, r);
      bottom = Math.max(bottom, r);
    }
  }
  if (bottom < 0) return undefined;
  // The vertebra is the largest connected piece of bone in that band; a contrast-filled aorta in front of it is a
  // piece of its own (fat lies between), so it cannot pass for the vertebra's front.
  const band = { r0: Math.round((top + bottom) / 2), r1: bottom, c0: Math.max(0, midline - px(25)), c1: Math.min(columns - 1, midline + px(25)) };
  const vertebra = largestPiece(band, (r, c) => slice[r * columns + c]! > BONE_HU, true);
  if (vertebra.length < px(10) * py(10)) return undefined; // no vertebral body on this slice
  const boneRows = vertebra.map((p) => p[0]).sort((a, b) => a - b);
  const front = boneRows[Math.floor(boneRows.length * 0.05)]!; // the vertebral body's anterior edge
  const inner = px(5);
  // A box with bone just in front of it is inside a vertebra (its trabecular bone, walled by the anterior cortex).
  const wallDepth = py(15);
  // The tables cover what the search below asks of them: its boxes and the wall strip above each.
  const reach = Math.max(px(20), px(40)) + inner + 1;
  const window = { r0: front - py(35) - inner - wallDepth, r1: front - py(2) + 1, c0: midline - reach, c1: midline + reach + 1 };
  const soft = new BoxSums(rows, columns, slice, { below: AIR_HU }, { window });
  const walls = new BoxSums(rows, columns, slice, { above: WALL_HU }, { values: false, window });
  let best: { hu: number; row: number; column: number } | undefined;
  const grid = Math.max(1, px(2));
  // Boxes wholly in front of the vertebral body, close to it (the aorta lies against it, never inside), from a little
  // right of the midline to well left of it; farther out lie the stomach and bowel, which oral contrast fills.
  for (let r = front - py(35); r <= front - inner - py(2); r += grid) {
    for (let dc = -px(20); dc <= px(40); dc += grid) {
      const c = midline + dc * leftward;
      if (r < 0 || !inBody(r, c)) continue;
      const box = soft.stats(r, c, inner);
      if (!box || box.marked > 0 || box.mean > 700) continue; // air or lung in it, or bone
      if (box.sd > Math.max(homogeneousSd, Math.abs(box.mean) * 0.25)) continue; // not homogeneous
      if (!walls.hasMarked(r - inner - wallDepth, c - inner, r - inner, c + inner + 1)) {
        if (!best || box.mean > best.hu) best = { hu: box.mean, row: r, column: c };
      }
    }
  }
  return best;
}

/**
 * The largest 4-connected set of pixels of a box that pass `inside` (with the holes inside it filled, if asked), as
 * [row, column] pairs.
 */
function largestPiece(box: { r0: number; r1: number; c0: number; c1: number }, inside: (r: number, c: number) => boolean, filled = false): [number, number][] {
  const width = box.c1 - box.c0 + 1;
  const height = box.r1 - box.r0 + 1;
  if (width <= 0 || height <= 0) return [];
  if (filled) {
    const mask = new Uint8Array(width * height);
    for (let i = 0; i < mask.length; i += 1) mask[i] = inside(box.r0 + Math.floor(i / width), box.c0 + (i % width)) ? 1 : 0;
    fillHoles(mask, height, width);
    return largestPiece(box, (r, c) => mask[(r - box.r0) * width + (c - box.c0)] === 1);
  }
  const seen = new Uint8Array(width * height);
  let best: [number, number][] = [];
  for (let start = 0; start < seen.length; start += 1) {
    const r = box.r0 + Math.floor(start / width);
    const c = box.c0 + (start % width);
    if (seen[start] || !inside(r, c)) continue;
    const piece: [number, number][] = [];
    const stack = [start];
    seen[start] = 1;
    while (stack.length > 0) {
      const i = stack.pop()!;
      const pr = box.r0 + Math.floor(i / width);
      const pc = box.c0 + (i % width);
      piece.push([pr, pc]);
      for (const [nr, nc] of [[pr - 1, pc], [pr + 1, pc], [pr, pc - 1], [pr, pc + 1]] as const) {
        if (nr < box.r0 || nr > box.r1 || nc < box.c0 || nc > box.c1) continue;
        const j = (nr - box.r0) * width + (nc - box.c0);
        if (seen[j] || !inside(nr, nc)) continue;
        seen[j] = 1;
        stack.push(j);
      }
    }
    if (piece.length > best.length) best = piece;
  }
  return best;
}
