/**
 * The candidate classifier's patch (src/models/candidate-patches.ts), against values computed by hand (and checked
 * with scipy.ndimage.map_coordinates(hu, [k, r, c], order=1, mode="constant", cval=huMin), the training side's
 * sampler). The volume's spacing differs on every axis (slices 2 mm, rows 0.5 mm, columns 0.8 mm) and its HU are
 * 10 k + 3 r + c, so a swapped axis, a swapped row/column spacing or a wrong weight gives other numbers; trilinear
 * interpolation of a linear field is the field itself, so each point inside is 10 k + 3 r + c at its coordinates.
 */
import { describe, expect, it } from "vitest";
import { maskCentroid, samplePatch, samplePatches, type PatchGrid, type SampledVolume } from "../../src/models/candidate-patches.js";

const SLICES = 4;
const ROWS = 5;
const COLUMNS = 6;

function linearVolume(): SampledVolume {
  const hu = new Float32Array(SLICES * ROWS * COLUMNS);
  for (let k = 0; k < SLICES; k++) for (let r = 0; r < ROWS; r++) for (let c = 0; c < COLUMNS; c++) hu[(k * ROWS + r) * COLUMNS + c] = 10 * k + 3 * r + c;
  return { slices: SLICES, rows: ROWS, columns: COLUMNS, hu, sliceSpacing: 2, pixelSpacing: [0.5, 0.8] };
}

/** Network value = HU (clipped to +-100): the numbers read as HU, and outside reads -100. */
const IDENTITY: PatchGrid = { patchVoxels: 3, spacingMm: 1, intensity: { huMin: -100, huMax: 100, networkMin: -100, networkMax: 100 } };

/** The P^3 values as [d][h][w]. */
function nested(values: Float32Array, p: number): number[][][] {
  return Array.from({ length: p }, (_, d) => Array.from({ length: p }, (_, h) => Array.from(values.subarray((d * p + h) * p, (d * p + h + 1) * p))));
}

describe("the candidate patch", () => {
  it("steps 1 mm along the volume's own axes (0.5 slice, 2 rows, 1.25 columns) and interpolates trilinearly; past the last column is huMin", () => {
    const out = new Float32Array(27);
    // Points: k 1, 1.5, 2; r 0, 2, 4 (4 = the last row: inside); c 3.5, 4.75, 6 (past the last column, 5: outside).
    samplePatch(linearVolume(), { slice: 1.5, row: 2, column: 4.75 }, IDENTITY, out);
    expect(nested(out, 3)).toEqual([
      [[13.5, 14.75, -100], [19.5, 20.75, -100], [25.5, 26.75, -100]],
      [[18.5, 19.75, -100], [24.5, 25.75, -100], [30.5, 31.75, -100]],
      [[23.5, 24.75, -100], [29.5, 30.75, -100], [35.5, 36.75, -100]],
    ]);
  });

  it("gives huMin to a point a little before the first slice or column (no interpolation with the outside)", () => {
    const out = new Float32Array(27);
    // k -0.25 (outside), 0.25, 0.75; r 0, 2, 4; c -0.25 (outside), 1, 2.25.
    samplePatch(linearVolume(), { slice: 0.25, row: 2, column: 1 }, IDENTITY, out);
    expect(nested(out, 3)).toEqual([
      [[-100, -100, -100], [-100, -100, -100], [-100, -100, -100]],
      [[-100, 3.5, 4.75], [-100, 9.5, 10.75], [-100, 15.5, 16.75]],
      [[-100, 8.5, 9.75], [-100, 14.5, 15.75], [-100, 20.5, 21.75]],
    ]);
  });

  it("clips HU to [huMin, huMax] after interpolating, then maps them to the network's range; outside is networkMin", () => {
    // 2 x 2 x 2 voxels, -2000 HU in column 0 and 1000 HU in column 1; huMin -1000, huMax 400 -> [-1, 1].
    const volume: SampledVolume = {
      slices: 2, rows: 2, columns: 2, hu: Int16Array.from([-2000, 1000, -2000, 1000, -2000, 1000, -2000, 1000]), sliceSpacing: 1, pixelSpacing: [0.2, 0.5],
    };
    const grid: PatchGrid = { patchVoxels: 2, spacingMm: 0.2, intensity: { huMin: -1000, huMax: 400, networkMin: -1, networkMax: 1 } };
    const out = new Float32Array(8);
    // k 0.4, 0.6; r 0, 1; c 0.3, 0.7: -2000 x 0.7 + 1000 x 0.3 = -1100 HU -> clipped to -1000 -> -1;
    // -2000 x 0.3 + 1000 x 0.7 = 100 HU -> -1 + 2 x 1100 / 1400.
    samplePatch(volume, { slice: 0.5, row: 0.5, column: 0.5 }, grid, out);
    const bright = -1 + (2 * 1100) / 1400;
    for (let i = 0; i < 8; i++) expect(out[i]).toBeCloseTo(i % 2 === 0 ? -1 : bright, 6);
    // c 0.7, 1.1 (outside): 100 HU, then networkMin.
    samplePatch(volume, { slice: 0.5, row: 0.5, column: 0.9 }, grid, out);
    for (let i = 0; i < 8; i++) expect(out[i]).toBeCloseTo(i % 2 === 0 ? bright : -1, 6);
  });

  it("centres on the mask's mean voxel index and lays the patches one after the other", async () => {
    const mask = [{ slice: 1, pixels: [2 * COLUMNS + 4, 2 * COLUMNS + 5] }, { slice: 2, pixels: [2 * COLUMNS + 4, 2 * COLUMNS + 5] }];
    const centre = maskCentroid({ mask }, COLUMNS);
    expect(centre).toEqual({ slice: 1.5, row: 2, column: 4.5 });
    const both = await samplePatches(linearVolume(), [{ slice: 1.5, row: 2, column: 4.75 }, centre], IDENTITY);
    const first = new Float32Array(27);
    const second = new Float32Array(27);
    samplePatch(linearVolume(), { slice: 1.5, row: 2, column: 4.75 }, IDENTITY, first);
    samplePatch(linearVolume(), centre, IDENTITY, second);
    expect(Array.from(both)).toEqual([...first, ...second]);
    expect(second[13]).toBe(10 * 1.5 + 3 * 2 + 4.5); // the centre point itself
  });
});
