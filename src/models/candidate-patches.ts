/**
 * The patch the candidate classifier scores (docs/candidate-classifier.md): P x P x P points spaced
 * `spacingMm` along the volume's own slice, row and column axes, centred on the candidate's centroid (the mean voxel
 * index of its component, in continuous voxel coordinates). Each point is the trilinear interpolation of the HU around
 * it; a point outside the volume (any coordinate below 0 or above the last index) takes huMin. The HU are then clipped
 * to the classifier's range and mapped to the network's. The same as the training side's
 * scipy.ndimage.map_coordinates(hu, [k, r, c], order=1, mode="constant", cval=huMin), which is what it was made from.
 */
import type { CtVolume } from "../dicom/ct-volume.js";
import type { Finding } from "../dicom/finding.js";
import { turnTaker } from "../event-loop.js";
import type { CandidateClassifier } from "./manifest.js";
import { huToNetwork } from "./slice-batches.js";

/** A point in continuous voxel coordinates: slice index, row, column. */
export interface VoxelPoint {
  slice: number;
  row: number;
  column: number;
}

/** What the sampler needs of a volume: its shape and spacing, and HU in any numeric array (a compact copy will do). */
export interface SampledVolume extends Pick<CtVolume, "slices" | "rows" | "columns" | "pixelSpacing" | "sliceSpacing"> {
  hu: ArrayLike<number>;
}

export type PatchGrid = Pick<CandidateClassifier, "patchVoxels" | "spacingMm" | "intensity">;

/** The mean voxel index of a finding's mask: the centroid probability-findings.ts puts in patient space. */
export function maskCentroid(finding: Pick<Finding, "mask">, columns: number): VoxelPoint {
  let slice = 0;
  let row = 0;
  let column = 0;
  let n = 0;
  for (const { slice: k, pixels } of finding.mask) {
    for (const p of pixels) {
      slice += k;
      row += Math.floor(p / columns);
      column += p % columns;
      n += 1;
    }
  }
  return { slice: slice / n, row: row / n, column: column / n };
}

/** One axis of the grid: for each of the P points, its lower voxel, the weight of the upper one, and whether it is inside. */
interface AxisSamples {
  lower: Int32Array;
  weight: Float64Array;
  inside: Uint8Array;
}

function axisSamples(centre: number, points: number, stepVoxels: number, length: number): AxisSamples {
  const lower = new Int32Array(points);
  const weight = new Float64Array(points);
  const inside = new Uint8Array(points);
  for (let i = 0; i < points; i++) {
    const x = centre + (i - (points - 1) / 2) * stepVoxels;
    if (!(x >= 0 && x <= length - 1)) continue;
    inside[i] = 1;
    // At the last index the upper neighbour has weight 0: take it from the last voxel itself.
    const floor = Math.min(Math.floor(x), length - 1);
    lower[i] = floor;
    weight[i] = x - floor;
  }
  return { lower, weight, inside };
}

/** The patch around `centre`, network values, D (slice) then H (row) then W (column), written into `out` at `offset`. */
export function samplePatch(volume: SampledVolume, centre: VoxelPoint, grid: PatchGrid, out: Float32Array, offset = 0): void {
  const { slices, rows, columns, hu } = volume;
  const p = grid.patchVoxels;
  const toNetwork = huToNetwork(grid);
  const outside = toNetwork(grid.intensity.huMin);
  const ks = axisSamples(centre.slice, p, grid.spacingMm / volume.sliceSpacing, slices);
  const rs = axisSamples(centre.row, p, grid.spacingMm / volume.pixelSpacing[0], rows);
  const cs = axisSamples(centre.column, p, grid.spacingMm / volume.pixelSpacing[1], columns);
  const plane = rows * columns;
  let o = offset;
  for (let d = 0; d < p; d++) {
    const k0 = ks.lower[d]!;
    const k1 = Math.min(k0 + 1, slices - 1);
    const fk = ks.weight[d]!;
    for (let h = 0; h < p; h++) {
      const r0 = rs.lower[h]!;
      const r1 = Math.min(r0 + 1, rows - 1);
      const fr = rs.weight[h]!;
      for (let w = 0; w < p; w++, o++) {
        if (!(ks.inside[d] && rs.inside[h] && cs.inside[w])) {
          out[o] = outside;
          continue;
        }
        const c0 = cs.lower[w]!;
        const c1 = Math.min(c0 + 1, columns - 1);
        const fc = cs.weight[w]!;
        const at = (k: number, r: number, c: number): number => hu[k * plane + r * columns + c]!;
        const top = (at(k0, r0, c0) * (1 - fc) + at(k0, r0, c1) * fc) * (1 - fr) + (at(k0, r1, c0) * (1 - fc) + at(k0, r1, c1) * fc) * fr;
        const bottom = (at(k1, r0, c0) * (1 - fc) + at(k1, r0, c1) * fc) * (1 - fr) + (at(k1, r1, c0) * (1 - fc) + at(k1, r1, c1) * fc) * fr;
        out[o] = toNetwork(top * (1 - fk) + bottom * fk);
      }
    }
  }
}

/** The patches of every centre, one after the other: the classifier's [N, 1, P, P, P] input. */
export async function samplePatches(volume: SampledVolume, centres: readonly VoxelPoint[], grid: PatchGrid): Promise<Float32Array> {
  const size = grid.patchVoxels ** 3;
  const out = new Float32Array(centres.length * size);
  const takeTurn = turnTaker();
  for (const [i, centre] of centres.entries()) {
    await takeTurn(); // a 32^3 patch is about a millisecond: the event loop gets a turn every few dozen
    samplePatch(volume, centre, grid, out, i * size);
  }
  return out;
}
