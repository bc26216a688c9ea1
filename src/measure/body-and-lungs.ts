/**
 * On the coarse volume: the body (per slice, the largest component above -500 HU with its holes filled) and the
 * air-filled lungs inside it: 3D components (6-connected) of body voxels below -400 HU that are large (>= 100 ml)
 * and mostly lung parenchyma (-950..-600 HU) rather than pure gas, which tells lungs from bowel gas. Left and right
 * are told by the patient x of each voxel against the body's midline.
 */
import { turnTaker } from "../event-loop.js";
import { fillHoles, largestComponent } from "./body-mask.js";
import type { CoarseVolume } from "./coarse-volume.js";

const BODY_HU = -500;
const AIR_HU = -400;
const PARENCHYMA_HU: [number, number] = [-950, -600];
const MIN_LUNG_ML = 100;
const MIN_PARENCHYMA_FRACTION = 0.3;

export interface BodyAndLungs {
  /** 1 = body, coarse voxels. */
  body: Uint8Array;
  /** 1 = lung, coarse voxels. */
  lungs: Uint8Array;
  /** Body cross-section per slice, cm2. */
  bodyAreaCm2: number[];
  /** Lung cross-section per slice, cm2. */
  lungAreaCm2: number[];
  /** Patient x of the body's midline (its centroid), mm. */
  midlineXMm: number;
  lungMl: number;
  leftLungMl: number;
  rightLungMl: number;
}

export async function bodyAndLungs(coarse: CoarseVolume): Promise<BodyAndLungs> {
  const { slices, rows, columns } = coarse;
  const plane = rows * columns;
  const pixelCm2 = (coarse.pixelMm[0] * coarse.pixelMm[1]) / 100;
  const voxelMl = (pixelCm2 * coarse.sliceMm) / 10;
  const body = new Uint8Array(slices * plane);
  const candidate = new Uint8Array(slices * plane);
  const bodyAreaCm2: number[] = [];
  const takeTurn = turnTaker();
  let sumX = 0;
  let bodyVoxels = 0;
  for (let k = 0; k < slices; k += 1) {
    await takeTurn();
    const { area, sumXMm } = bodySlice(coarse, k, body, candidate);
    sumX += sumXMm;
    bodyVoxels += area;
    bodyAreaCm2.push(area * pixelCm2);
  }
  const midlineXMm = bodyVoxels > 0 ? sumX / bodyVoxels : 0;
  const lungs = await lungComponents(coarse, candidate, voxelMl);
  const lungAreaCm2: number[] = [];
  let left = 0;
  let right = 0;
  for (let k = 0; k < slices; k += 1) {
    await takeTurn();
    const side = lungSides(coarse, lungs, k, midlineXMm);
    left += side.left;
    right += side.right;
    lungAreaCm2.push((side.left + side.right) * pixelCm2);
  }
  return {
    body, lungs, bodyAreaCm2, lungAreaCm2, midlineXMm,
    lungMl: (left + right) * voxelMl, leftLungMl: left * voxelMl, rightLungMl: right * voxelMl,
  };
}

/*
 * The per-slice and per-component work is in plain (not async) functions, with the turns for the event loop taken
 * between calls: V8 optimises these loops far better outside an async function (the probe took ~2x as long).
 */

/** Slice k's body (largest component above -500 HU, holes filled) into `body`, its air voxels into `candidate`. */
function bodySlice(coarse: CoarseVolume, k: number, body: Uint8Array, candidate: Uint8Array): { area: number; sumXMm: number } {
  const { rows, columns, hu, columnXMm } = coarse;
  const plane = rows * columns;
  const at = k * plane;
  const foreground = new Uint8Array(plane);
  for (let i = 0; i < plane; i += 1) foreground[i] = hu[at + i]! > BODY_HU ? 1 : 0;
  const slice = largestComponent(foreground, rows, columns);
  fillHoles(slice, rows, columns);
  body.set(slice, at);
  let area = 0;
  let sumXMm = 0;
  for (let r = 0, i = 0; r < rows; r += 1) {
    for (let c = 0; c < columns; c += 1, i += 1) {
      if (!slice[i]) continue;
      area += 1;
      sumXMm += columnXMm[c]!;
      if (hu[at + i]! < AIR_HU) candidate[at + i] = 1;
    }
  }
  return { area, sumXMm };
}

/** Lung voxels of slice k on the patient's left (x above the midline) and right. */
function lungSides(coarse: CoarseVolume, lungs: Uint8Array, k: number, midlineXMm: number): { left: number; right: number } {
  const { rows, columns, columnXMm } = coarse;
  let left = 0;
  let right = 0;
  for (let r = 0, i = k * rows * columns; r < rows; r += 1) {
    for (let c = 0; c < columns; c += 1, i += 1) {
      if (!lungs[i]) continue;
      if (columnXMm[c]! > midlineXMm) left += 1;
      else right += 1;
    }
  }
  return { left, right };
}

/** The 6-connected components of the candidates that are lungs (large, mostly parenchyma), as a mask. */
async function lungComponents(coarse: CoarseVolume, candidate: Uint8Array, voxelMl: number): Promise<Uint8Array> {
  const label = new Int32Array(candidate.length);
  const stack = new Int32Array(candidate.length);
  const lungs = new Uint8Array(candidate.length);
  /** Per label (1-based), whether its component is a lung. */
  const isLung: boolean[] = [false];
  const takeTurn = turnTaker();
  for (let start = 0; start < candidate.length; start += 1) {
    if (!candidate[start] || label[start]) continue;
    // One component at a time: a lung is ~400k coarse voxels, a few ms; the API gets its turns between components.
    await takeTurn();
    const { size, parenchyma } = floodComponent(coarse, candidate, label, stack, start, isLung.length);
    isLung.push(size * voxelMl >= MIN_LUNG_ML && parenchyma / size >= MIN_PARENCHYMA_FRACTION);
  }
  const chunk = 1 << 18;
  for (let from = 0; from < label.length; from += chunk) {
    await takeTurn();
    const to = Math.min(label.length, from + chunk);
    for (let i = from; i < to; i += 1) if (label[i] && isLung[label[i]!]) lungs[i] = 1;
  }
  return lungs;
}

/** Labels the 6-connected component of `start` with `next`; its size and how many of its voxels are parenchyma. */
function floodComponent(
  coarse: CoarseVolume, candidate: Uint8Array, label: Int32Array, stack: Int32Array, start: number, next: number,
): { size: number; parenchyma: number } {
  const { rows, columns, slices, hu } = coarse;
  const plane = rows * columns;
  let size = 0;
  let parenchyma = 0;
  let top = 0;
  stack[top++] = start;
  label[start] = next;
  const visit = (j: number): void => {
    if (!candidate[j] || label[j]) return;
    label[j] = next;
    stack[top++] = j;
  };
  while (top > 0) {
    const i = stack[--top]!;
    size += 1;
    const v = hu[i]!;
    if (v >= PARENCHYMA_HU[0] && v <= PARENCHYMA_HU[1]) parenchyma += 1;
    const k = (i / plane) | 0;
    const rest = i - k * plane;
    const r = (rest / columns) | 0;
    const c = rest - r * columns;
    if (c > 0) visit(i - 1);
    if (c < columns - 1) visit(i + 1);
    if (r > 0) visit(i - columns);
    if (r < rows - 1) visit(i + columns);
    if (k > 0) visit(i - plane);
    if (k < slices - 1) visit(i + plane);
  }
  return { size, parenchyma };
}
