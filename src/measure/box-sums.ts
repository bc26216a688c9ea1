/**
 * Sums over boxes of one slice in O(1) each: integral images (summed-area tables) of the values, their squares,
 * and a mark (values below or above a threshold: air, cortical bone). Only the tables asked for are built, over
 * the window asked for, in one pass.
 */

/** Which pixels are marked: those below `below` HU, or above `above` HU. */
export type BoxMark = { below: number } | { above: number };

/** A rectangle of a slice: rows [r0, r1) x columns [c0, c1). */
export interface SliceWindow {
  r0: number;
  c0: number;
  r1: number;
  c1: number;
}

export class BoxSums {
  private readonly sum: Float64Array | undefined;
  private readonly squares: Float64Array | undefined;
  private readonly marks: Int32Array | undefined;
  /** The part of the slice the tables cover (the whole slice unless a window was given). */
  private readonly window: SliceWindow;
  private readonly width: number;

  /**
   * `values: false` builds the marks only (for `hasMarked`); `window` limits the tables to the part of the slice
   * that boxes will be asked of (a box reaching outside it counts as off the slice).
   */
  constructor(
    rows: number,
    columns: number,
    slice: Float32Array,
    mark: BoxMark | undefined,
    options: { values?: boolean; window?: SliceWindow } = {},
  ) {
    const asked = options.window ?? { r0: 0, c0: 0, r1: rows, c1: columns };
    const window = { r0: Math.max(0, asked.r0), c0: Math.max(0, asked.c0), r1: Math.min(rows, asked.r1), c1: Math.min(columns, asked.c1) };
    this.window = window;
    const height = Math.max(0, window.r1 - window.r0);
    const w = Math.max(0, window.c1 - window.c0) + 1;
    this.width = w;
    const size = (height + 1) * w;
    const values = options.values ?? true;
    const sum = values ? new Float64Array(size) : undefined;
    const squares = values ? new Float64Array(size) : undefined;
    const marks = mark ? new Int32Array(size) : undefined;
    const below = mark && "below" in mark ? mark.below : Number.NEGATIVE_INFINITY;
    const above = mark && "above" in mark ? mark.above : Number.POSITIVE_INFINITY;
    for (let y = 0; y < height; y += 1) {
      let s = 0;
      let q = 0;
      let m = 0;
      const row = (window.r0 + y) * columns + window.c0;
      const at0 = (y + 1) * w + 1;
      for (let x = 0; x < w - 1; x += 1) {
        const v = slice[row + x]!;
        const at = at0 + x;
        if (sum && squares) {
          s += v;
          q += v * v;
          sum[at] = sum[at - w]! + s;
          squares[at] = squares[at - w]! + q;
        }
        if (marks) {
          if (v < below || v > above) m += 1;
          marks[at] = marks[at - w]! + m;
        }
      }
    }
    this.sum = sum;
    this.squares = squares;
    this.marks = marks;
  }

  /** The sum of rows [r0, r1) x columns [c0, c1), slice coordinates inside the window. */
  private box(table: Float64Array | Int32Array, r0: number, c0: number, r1: number, c1: number): number {
    const w = this.width;
    const { r0: y, c0: x } = this.window;
    return table[(r1 - y) * w + c1 - x]! - table[(r0 - y) * w + c1 - x]! - table[(r1 - y) * w + c0 - x]! + table[(r0 - y) * w + c0 - x]!;
  }

  /** Whether any pixel of rows [r0, r1) x columns [c0, c1) (clipped to the window) is marked. */
  hasMarked(r0: number, c0: number, r1: number, c1: number): boolean {
    if (!this.marks) throw new Error("BoxSums built without a mark");
    const { window } = this;
    const [a, b, c, d] = [Math.max(window.r0, r0), Math.max(window.c0, c0), Math.min(window.r1, r1), Math.min(window.c1, c1)];
    return a < c && b < d && this.box(this.marks, a, b, c, d) > 0;
  }

  /** Mean, SD and marked count of the box centred on (r, c) with half-size h, or undefined off the window. */
  stats(r: number, c: number, h: number): { mean: number; sd: number; marked: number; n: number } | undefined {
    if (!this.sum || !this.squares) throw new Error("BoxSums built without values");
    const [r0, c0, r1, c1] = [r - h, c - h, r + h + 1, c + h + 1];
    const { window } = this;
    if (r0 < window.r0 || c0 < window.c0 || r1 > window.r1 || c1 > window.c1) return undefined;
    const n = (r1 - r0) * (c1 - c0);
    const mean = this.box(this.sum, r0, c0, r1, c1) / n;
    const variance = Math.max(0, this.box(this.squares, r0, c0, r1, c1) / n - mean * mean);
    return { mean, sd: Math.sqrt(variance), marked: this.marks ? this.box(this.marks, r0, c0, r1, c1) : 0, n };
  }
}

/**
 * Mean, SD and marked count of one box (centred on (r, c), half-size h, inside the slice), summed directly: for
 * boxes that tile a slice without overlapping, cheaper than building the tables.
 */
export function boxStats(
  slice: Float32Array,
  columns: number,
  r: number,
  c: number,
  h: number,
  markBelow = Number.NEGATIVE_INFINITY,
): { mean: number; sd: number; marked: number } {
  let s = 0;
  let q = 0;
  let marked = 0;
  for (let y = r - h; y <= r + h; y += 1) {
    const row = y * columns;
    for (let x = c - h; x <= c + h; x += 1) {
      const v = slice[row + x]!;
      s += v;
      q += v * v;
      if (v < markBelow) marked += 1;
    }
  }
  const n = (2 * h + 1) * (2 * h + 1);
  const mean = s / n;
  return { mean, sd: Math.sqrt(Math.max(0, q / n - mean * mean)), marked };
}
