/**
 * The long axis of a finding's mask (src/dicom/long-axis.ts): on the largest slice, the two outline pixels farthest
 * apart in mm, with anisotropic pixel spacing counted the right way round (row spacing down the rows).
 */
import { describe, expect, it } from "vitest";
import { longAxis } from "../../../src/dicom/long-axis.js";

const COLUMNS = 64;
const ROWS = 48;
/** Row spacing (between rows) differs from column spacing, so a swapped axis gives a different length. */
const geometry = { rows: ROWS, columns: COLUMNS, pixelSpacing: [0.5, 0.8] as [number, number] };
const at = (row: number, column: number) => row * COLUMNS + column;

function ellipse(centreRow: number, centreColumn: number, halfRows: number, halfColumns: number): number[] {
  const pixels: number[] = [];
  for (let r = centreRow - halfRows; r <= centreRow + halfRows; r++) {
    for (let c = centreColumn - halfColumns; c <= centreColumn + halfColumns; c++) {
      if (((r - centreRow) / halfRows) ** 2 + ((c - centreColumn) / halfColumns) ** 2 <= 1) pixels.push(at(r, c));
    }
  }
  return pixels;
}

/** The same figure by brute force over every pixel pair of the slice (not only the outline). */
function bruteForce(pixels: number[]): number {
  let longest = 0;
  for (const p of pixels) {
    for (const q of pixels) {
      const dr = (Math.floor(p / COLUMNS) - Math.floor(q / COLUMNS)) * geometry.pixelSpacing[0];
      const dc = ((p % COLUMNS) - (q % COLUMNS)) * geometry.pixelSpacing[1];
      longest = Math.max(longest, Math.hypot(dr, dc));
    }
  }
  return longest;
}

describe("long axis of a mask", () => {
  it("is on the largest slice, between the two outline pixels farthest apart, in mm", () => {
    const small = ellipse(20, 30, 2, 2);
    const large = ellipse(24, 32, 3, 9); // long along the rows' direction: columns 23..41 on row 24
    const axis = longAxis([{ slice: 4, pixels: small }, { slice: 5, pixels: large }, { slice: 6, pixels: small }], geometry);
    expect(axis.slice).toBe(5);
    expect(axis.lengthMm).toBeCloseTo(bruteForce(large), 9);
    expect(axis.lengthMm).toBeCloseTo(18 * 0.8, 9); // column 23 to column 41 on the centre row
    const [a, b] = axis.ends;
    expect(large).toContain(at(a.row, a.column));
    expect(large).toContain(at(b.row, b.column));
    expect(Math.hypot((a.row - b.row) * 0.5, (a.column - b.column) * 0.8)).toBeCloseTo(axis.lengthMm, 9);
  });

  it("counts row spacing down the rows and column spacing along them", () => {
    // A vertical bar of 11 rows (10 row steps of 0.5 mm) and a horizontal one of 11 columns (10 steps of 0.8 mm).
    const vertical = Array.from({ length: 11 }, (_, i) => at(10 + i, 5));
    const horizontal = Array.from({ length: 11 }, (_, i) => at(5, 10 + i));
    expect(longAxis([{ slice: 0, pixels: vertical }], geometry).lengthMm).toBeCloseTo(5, 9);
    expect(longAxis([{ slice: 0, pixels: horizontal }], geometry).lengthMm).toBeCloseTo(8, 9);
  });

  it("takes the first of equally large slices, and gives the same ends for the same mask in any pixel order", () => {
    const square = [at(1, 1), at(1, 2), at(2, 1), at(2, 2)];
    const axis = longAxis([{ slice: 2, pixels: square }, { slice: 3, pixels: [...square].reverse() }], geometry);
    expect(axis.slice).toBe(2);
    expect(axis).toEqual({ ...longAxis([{ slice: 2, pixels: [...square].reverse() }], geometry), slice: 2 });
    expect(axis.lengthMm).toBeCloseTo(Math.hypot(0.5, 0.8), 9);
  });

  it("is 0 mm for one pixel, and refuses an empty mask", () => {
    expect(longAxis([{ slice: 0, pixels: [at(3, 3)] }], geometry).lengthMm).toBe(0);
    expect(() => longAxis([], geometry)).toThrow(/^mask: /);
  });
});
