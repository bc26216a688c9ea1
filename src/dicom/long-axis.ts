/**
 * A finding's long axis as a reader measures it: on the axial slice where the finding is largest, the longest line
 * between two points of its outline, in mm (the RECIST / Fleischner way of giving a nodule's size). The SR draws this
 * line (TID 1410, a two-point POLYLINE on the source image) and reports its length; the detector reports the same
 * length as the finding's longest diameter, so there is one figure, measured one way.
 *
 * Points are pixel centres of boundary pixels of the mask (a mask pixel with a 4-neighbour outside the mask or
 * outside the image); distances use the slice's pixel spacing (row spacing down the rows, column spacing along them),
 * which is the in-plane distance in patient mm for the orthonormal orientation every CT slice has.
 */
import type { CtVolume } from "./ct-volume.js";

/** One pixel of a slice: row and column indices. */
export interface PixelIndex {
  row: number;
  column: number;
}

export interface LongAxis {
  /** Index of the slice (into the volume) the axis lies on: the one where the mask has the most pixels. */
  slice: number;
  /** The axis' two end points, pixel centres of the mask's outline on that slice. */
  ends: [PixelIndex, PixelIndex];
  lengthMm: number;
}

type Mask = readonly { slice: number; pixels: readonly number[] }[];
type Geometry = Pick<CtVolume, "rows" | "columns" | "pixelSpacing">;

/** The mask pixels of one slice that touch the outside (4-neighbourhood): the only candidates for the axis' ends. */
function boundary(pixels: readonly number[], geometry: Geometry): PixelIndex[] {
  const { rows, columns } = geometry;
  const inside = new Set(pixels);
  const outline: PixelIndex[] = [];
  for (const p of inside) {
    const row = Math.floor(p / columns);
    const column = p % columns;
    const touchesOutside =
      row === 0 || row === rows - 1 || column === 0 || column === columns - 1 ||
      !inside.has(p - columns) || !inside.has(p + columns) || !inside.has(p - 1) || !inside.has(p + 1);
    if (touchesOutside) outline.push({ row, column });
  }
  return outline.sort((a, b) => a.row - b.row || a.column - b.column); // the same mask gives the same ends
}

/**
 * The long axis of a finding's mask. The largest slice wins; between slices of equal area, the first. Throws a
 * RangeError when the mask is empty.
 */
export function longAxis(mask: Mask, geometry: Geometry): LongAxis {
  let largest: Mask[number] | undefined;
  for (const m of mask) if (!largest || m.pixels.length > largest.pixels.length) largest = m;
  if (!largest || largest.pixels.length === 0) throw new RangeError("mask: has no pixels, so no long axis");
  const [rowSpacing, columnSpacing] = geometry.pixelSpacing;
  const outline = boundary(largest.pixels, geometry);
  let ends: [PixelIndex, PixelIndex] = [outline[0]!, outline[0]!];
  let longest = 0;
  for (let i = 0; i < outline.length; i++) {
    const a = outline[i]!;
    for (let j = i + 1; j < outline.length; j++) {
      const b = outline[j]!;
      const d = ((a.row - b.row) * rowSpacing) ** 2 + ((a.column - b.column) * columnSpacing) ** 2;
      if (d > longest) {
        longest = d;
        ends = [a, b];
      }
    }
  }
  return { slice: largest.slice, ends, lengthMm: Math.sqrt(longest) };
}
