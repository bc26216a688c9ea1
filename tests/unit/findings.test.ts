/**
 * From a probability map to findings (src/models/probability-findings.ts): 26-connected components above the threshold,
 * measured in patient space (centroid, longest diameter, volume, peak probability), small ones dropped, the most
 * probable first, at most maxFindings. The volume has anisotropic spacing and an offset origin so that a mix-up of
 * rows and columns, or of row and column spacing, shows.
 */
import { describe, expect, it } from "vitest";
import type { CtVolume, Vector3 } from "../../src/dicom/ct-volume.js";
import { voxelToPatient } from "../../src/dicom/geometry.js";
import { type FindingRules, findingsFromProbability } from "../../src/models/probability-findings.js";

const SLICES = 10;
const ROWS = 32;
const COLUMNS = 40;
const ROW_SPACING = 0.5; // between rows (PixelSpacing[0])
const COLUMN_SPACING = 0.8; // between columns (PixelSpacing[1])
const SLICE_SPACING = 2;
const ORIGIN: Vector3 = [-100, -50, 10];

function volume(): CtVolume {
  return {
    studyInstanceUID: "2.25.1",
    seriesInstanceUID: "2.25.2",
    frameOfReferenceUID: "2.25.3",
    rows: ROWS,
    columns: COLUMNS,
    slices: SLICES,
    hu: new Float32Array(SLICES * ROWS * COLUMNS),
    pixelSpacing: [ROW_SPACING, COLUMN_SPACING],
    sliceSpacing: SLICE_SPACING,
    imageOrientationPatient: [1, 0, 0, 0, 1, 0],
    imagePositionPatient: Array.from({ length: SLICES }, (_, k) => [ORIGIN[0], ORIGIN[1], ORIGIN[2] + k * SLICE_SPACING] as Vector3),
    sourceSlices: Array.from({ length: SLICES }, (_, k) => ({ sopClassUID: "1.2.840.10008.5.1.4.1.1.2", sopInstanceUID: `2.25.10${k}` })),
    sliceHeaders: [],
  };
}

function setBox(map: Float32Array, [k0, k1]: number[], [r0, r1]: number[], [c0, c1]: number[], value: number): void {
  for (let k = k0!; k <= k1!; k++) for (let r = r0!; r <= r1!; r++) for (let c = c0!; c <= c1!; c++) map[k * ROWS * COLUMNS + r * COLUMNS + c] = value;
}

const at = (k: number, r: number, c: number): number => k * ROWS * COLUMNS + r * COLUMNS + c;

function rules(overrides: Partial<FindingRules> = {}): FindingRules {
  return {
    threshold: 0.5,
    minVolumeMm3: 10,
    maxFindings: 20,
    findingCode: { value: "27925004", scheme: "SCT", meaning: "Nodule" },
    findingSiteCode: { value: "39607008", scheme: "SCT", meaning: "Lung" },
    trackingNamespace: "2.25.99",
    trackingLabel: "Nodule",
    ...overrides,
  };
}

/** Blob A: slices 2-4, rows 5-9, columns 10-13, p 0.9. Blob B: slices 6-7, rows 20-25, columns 30-35, p 0.7, one voxel 0.95. One stray voxel p 0.99. */
function twoBlobs(): Float32Array {
  const map = new Float32Array(SLICES * ROWS * COLUMNS);
  setBox(map, [2, 4], [5, 9], [10, 13], 0.9);
  setBox(map, [6, 7], [20, 25], [30, 35], 0.7);
  map[at(7, 22, 33)] = 0.95;
  map[at(0, 30, 2)] = 0.99; // 0.8 mm3: below the minimum volume
  return map;
}

const voxelMm3 = ROW_SPACING * COLUMN_SPACING * SLICE_SPACING;

describe("findings from a probability map", () => {
  it("maps voxel indices to patient coordinates with row spacing down the rows and column spacing along them", () => {
    expect(voxelToPatient(volume(), 3, 7, 11.5)).toEqual([ORIGIN[0] + 11.5 * COLUMN_SPACING, ORIGIN[1] + 7 * ROW_SPACING, ORIGIN[2] + 3 * SLICE_SPACING]);
  });

  it("finds the two blobs, most probable first, with centroid, volume, diameter and peak probability", async () => {
    const found = await findingsFromProbability(twoBlobs(), volume(), rules());
    expect(found.map((f) => f.trackingId)).toEqual(["Nodule 1", "Nodule 2"]);
    const [b, a] = found;
    // Blob B (peak 0.95) first: centre slice 6.5, row 22.5, column 32.5; 2 x 6 x 6 voxels.
    expect(b!.probability).toBeCloseTo(0.95, 6);
    expect(b!.centroidPatientMm[0]).toBeCloseTo(ORIGIN[0] + 32.5 * COLUMN_SPACING, 6);
    expect(b!.centroidPatientMm[1]).toBeCloseTo(ORIGIN[1] + 22.5 * ROW_SPACING, 6);
    expect(b!.centroidPatientMm[2]).toBeCloseTo(ORIGIN[2] + 6.5 * SLICE_SPACING, 6);
    expect(b!.volumeMm3).toBeCloseTo(72 * voxelMm3, 6);
    // The long axis in the plane of its largest slice (both are 6 x 6: the first), corner to corner.
    expect(b!.longestDiameterMm).toBeCloseTo(Math.hypot(5 * COLUMN_SPACING, 5 * ROW_SPACING), 6);
    // Blob A: centre slice 3, row 7, column 11.5; 3 x 5 x 4 voxels.
    expect(a!.probability).toBeCloseTo(0.9, 6);
    expect(a!.centroidPatientMm[0]).toBeCloseTo(-90.8, 6);
    expect(a!.centroidPatientMm[1]).toBeCloseTo(-46.5, 6);
    expect(a!.centroidPatientMm[2]).toBeCloseTo(16, 6);
    expect(a!.volumeMm3).toBeCloseTo(60 * voxelMm3, 6);
    expect(a!.longestDiameterMm).toBeCloseTo(Math.hypot(3 * COLUMN_SPACING, 4 * ROW_SPACING), 6);
    expect(a!.mask.map((m) => m.slice)).toEqual([2, 3, 4]);
    expect(a!.mask[0]!.pixels).toHaveLength(20);
    expect(a!.mask[0]!.pixels).toContain(5 * COLUMNS + 10);
    expect(new Set(found.map((f) => f.trackingUid)).size).toBe(2);
  });

  it("keeps only voxels above the threshold", async () => {
    const found = await findingsFromProbability(twoBlobs(), volume(), rules({ threshold: 0.8 }));
    // Blob A stays whole; of blob B only its 0.95 voxel passes, and that is below the minimum volume.
    expect(found).toHaveLength(1);
    expect(found[0]!.volumeMm3).toBeCloseTo(60 * voxelMm3, 6);
    expect(await findingsFromProbability(twoBlobs(), volume(), rules({ threshold: 0.96 }))).toEqual([]);
  });

  it("drops components below the minimum volume and keeps at most maxFindings", async () => {
    const withTiny = await findingsFromProbability(twoBlobs(), volume(), rules({ minVolumeMm3: 0 }));
    expect(withTiny).toHaveLength(3);
    expect(withTiny[0]!.probability).toBeCloseTo(0.99, 6);
    const big = await findingsFromProbability(twoBlobs(), volume(), rules({ minVolumeMm3: 60 * voxelMm3 + 1 }));
    expect(big).toHaveLength(1);
    expect(big[0]!.volumeMm3).toBeCloseTo(72 * voxelMm3, 6);
    expect((await findingsFromProbability(twoBlobs(), volume(), rules({ maxFindings: 1 }))).map((f) => f.probability)).toEqual([
      expect.closeTo(0.95, 6),
    ]);
  });

  it("joins voxels that touch only at a corner (26-connectivity) and separates those one voxel apart", async () => {
    const map = new Float32Array(SLICES * ROWS * COLUMNS);
    setBox(map, [1, 2], [1, 3], [1, 3], 0.9);
    setBox(map, [3, 4], [4, 6], [4, 6], 0.9); // corner contact with the first box
    setBox(map, [1, 2], [1, 3], [8, 10], 0.9); // a gap of one column from the first box
    const found = await findingsFromProbability(map, volume(), rules({ minVolumeMm3: 0 }));
    expect(found.map((f) => Math.round(f.volumeMm3 / voxelMm3)).sort((x, y) => x - y)).toEqual([18, 36]);
  });
});
