/** The largest 6-connected region of a sparse voxel set: faces join, edges and corners do not, slices join through faces. */
import { describe, expect, it } from "vitest";
import { type GridShape, largestRegion, VoxelSet } from "../../src/measure/connected-regions.js";

const SHAPE: GridShape = { slices: 4, rows: 5, columns: 6 };
const at = (k: number, r: number, c: number): number => (k * SHAPE.rows + r) * SHAPE.columns + c;
const setOf = (voxels: [number, number, number][]): VoxelSet => {
  const set = new VoxelSet();
  for (const [k, r, c] of voxels) set.add(at(k, r, c));
  return set;
};

describe("largestRegion", () => {
  it("is empty for no voxels", () => {
    expect(largestRegion(new VoxelSet(), SHAPE)).toEqual({ voxels: 0, firstSlice: -1, lastSlice: -1 });
  });

  it("joins voxels through faces in a row, a column and across slices, in any order and counting repeats once", () => {
    const set = setOf([[2, 1, 1], [0, 1, 1], [1, 1, 1], [1, 2, 1], [1, 2, 2], [1, 2, 2], [3, 4, 5]]);
    expect(largestRegion(set, SHAPE)).toEqual({ voxels: 5, firstSlice: 0, lastSlice: 2 });
  });

  it("does not join along an edge or a corner, nor from the end of one row to the start of the next", () => {
    const diagonal = setOf([[0, 0, 0], [0, 1, 1], [1, 2, 2], [1, 2, 5], [1, 3, 0]]);
    expect(largestRegion(diagonal, SHAPE).voxels).toBe(1);
  });

  it("does not count a region that reaches a joining voxel, nor the joining voxels, but joins through them", () => {
    const set = setOf([[0, 0, 0], [0, 0, 1], [0, 0, 2], [2, 4, 4], [3, 4, 4]]);
    const pool = new VoxelSet();
    pool.add(at(0, 1, 2));
    expect(largestRegion(set, SHAPE, pool)).toEqual({ voxels: 2, firstSlice: 2, lastSlice: 3 });
    // two regions bridged only through the pool: both the pool's
    pool.add(at(1, 4, 4));
    pool.add(at(0, 4, 4));
    expect(largestRegion(setOf([[2, 4, 4], [3, 4, 4]]), SHAPE, pool).voxels).toBe(0);
    expect(largestRegion(setOf([[0, 1, 2]]), SHAPE, pool).voxels).toBe(0);
  });

  it("finds the larger of two regions wherever it lies, and grows past its first buffer", () => {
    const set = new VoxelSet();
    const big: GridShape = { slices: 30, rows: 40, columns: 40 };
    const index = (k: number, r: number, c: number): number => (k * big.rows + r) * big.columns + c;
    for (let k = 0; k < 3; k += 1) for (let r = 0; r < 10; r += 1) for (let c = 0; c < 10; c += 1) set.add(index(k, r, c));
    for (let k = 10; k < 30; k += 1) for (let r = 20; r < 30; r += 1) for (let c = 20; c < 30; c += 1) set.add(index(k, r, c));
    expect(set.size).toBe(2300);
    expect(largestRegion(set, big)).toEqual({ voxels: 2000, firstSlice: 10, lastSlice: 29 });
  });
});
