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
  const { slices, rows, columns, hu } = coarse;
  const plane = rows * columns;
  const pixelCm2 = (coarse.pixelMm[0] * coarse.pixelMm[1]) / 100;
  const voxelMl = (pixelCm2 * coarse.sliceMm) / 10;
  const body = new Uint8Array(slices * plane);
  const candidate = new Uint8Array(slices * plane);
  const bodyAreaCm2: number[] = [];
  const takeTurn = turnTaker();
  let sumX = 0;
  let bodyVoxels = 0;
  const foreground = new Uint8Array(plane);
  for (let k = 0; k < slices; k += 1) {
    await takeTurn();
    const at = k * plane;
    for (let i = 0; i < plane; i += 1) foreground[i] = hu[at + i]! > BODY_HU ? 1 : 0;
    const slice = largestComponent(foreground, rows, columns);
    fillHoles(slice, rows, columns);
    body.set(slice, at);
    let area = 0;
    for (let r = 0, i = 0; r < rows; r += 1) {
      for (let c = 0; c < columns; c += 1, i += 1) {
        if (!slice[i]) continue;
        area += 1;
        sumX += coarse.columnXMm[c]!;
        if (hu[at + i]! < AIR_HU) candidate[at + i] = 1;
      }
    }
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
    let area = 0;
    for (let r = 0, i = k * plane; r < rows; r += 1) {
      for (let c = 0; c < columns; c += 1, i += 1) {
        if (!lungs[i]) continue;
        area += 1;
        if (coarse.columnXMm[c]! > midlineXMm) left += 1;
        else right += 1;
      }
    }
    lungAreaCm2.push(area * pixelCm2);
  }
  return {
    body, lungs, bodyAreaCm2, lungAreaCm2, midlineXMm,
    lungMl: (left + right) * voxelMl, leftLungMl: left * voxelMl, rightLungMl: right * voxelMl,
  };
}

/** The 6-connected components of the candidates that are lungs (large, mostly parenchyma), as a mask. */
async function lungComponents(coarse: CoarseVolume, candidate: Uint8Array, voxelMl: number): Promise<Uint8Array> {
  const { rows, columns, slices, hu } = coarse;
  const plane = rows * columns;
  const label = new Int32Array(candidate.length);
  const stack = new Int32Array(candidate.length);
  const lungs = new Uint8Array(candidate.length);
  /** Per label (1-based), whether its component is a lung. */
  const isLung: boolean[] = [false];
  const neighbours = new Int32Array(6);
  const takeTurn = turnTaker();
  let next = 0;
  for (let start = 0; start < candidate.length; start += 1) {
    if (!candidate[start] || label[start]) continue;
    await takeTurn();
    next += 1;
    let size = 0;
    let parenchyma = 0;
    let top = 0;
    stack[top++] = start;
    label[start] = next;
    while (top > 0) {
      const i = stack[--top]!;
      size += 1;
      if ((size & 0xffff) === 0) await takeTurn(); // a lung is ~400k coarse voxels: the API gets its turns meanwhile
      const v = hu[i]!;
      if (v >= PARENCHYMA_HU[0] && v <= PARENCHYMA_HU[1]) parenchyma += 1;
      const k = (i / plane) | 0;
      const rest = i - k * plane;
      const r = (rest / columns) | 0;
      const c = rest - r * columns;
      neighbours[0] = c > 0 ? i - 1 : -1;
      neighbours[1] = c < columns - 1 ? i + 1 : -1;
      neighbours[2] = r > 0 ? i - columns : -1;
      neighbours[3] = r < rows - 1 ? i + columns : -1;
      neighbours[4] = k > 0 ? i - plane : -1;
      neighbours[5] = k < slices - 1 ? i + plane : -1;
      for (let n = 0; n < 6; n += 1) {
        const j = neighbours[n]!;
        if (j < 0 || !candidate[j] || label[j]) continue;
        label[j] = next;
        stack[top++] = j;
      }
    }
    isLung.push(size * voxelMl >= MIN_LUNG_ML && parenchyma / size >= MIN_PARENCHYMA_FRACTION);
  }
  for (let i = 0; i < label.length; i += 1) {
    if (label[i] && isLung[label[i]!]) lungs[i] = 1;
    if ((i & 0xffff) === 0) await takeTurn();
  }
  return lungs;
}
