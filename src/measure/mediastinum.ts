/**
 * The mediastinum of one slice, row by row, on the probe's coarse grid: on each row, the widest lung-free run between
 * the row's first and last lung voxel that holds the body's midline (the heart, the great vessels and what lies
 * between the lungs; a gap inside one lung, such as the liver dome inside the costophrenic recess, does not hold it).
 * Rows of the slice's lung extent without such a run take the nearest row's, and so do the rows in front of the lungs
 * (rows grow towards the back): low in the chest the heart lies against the front wall, ahead of both lungs. Nothing
 * is taken behind the lungs (spine, back muscles). A slice-wide column range (the gap between the lungs' inner edges
 * over the whole slice) missed the heart where it bulges under the left lung.
 */
export interface CoarseSlice {
  rows: number;
  columns: number;
  /** Lung voxels of the slice (row-major, coarse). */
  lungs: ArrayLike<number>;
  /** Body voxels of the slice (row-major, coarse). */
  body: ArrayLike<number>;
}

/** Per coarse row, the mediastinum's columns [first, last] (first > last: none on that row). */
export function mediastinumRows(slice: CoarseSlice): Array<[number, number]> {
  const { rows, columns, lungs } = slice;
  const midline = bodyMidline(slice);
  const spans: Array<[number, number] | undefined> = new Array(rows).fill(undefined);
  let lungTop = rows;
  let lungBottom = -1;
  for (let r = 0; r < rows; r += 1) {
    let first = -1;
    let last = -1;
    for (let c = 0; c < columns; c += 1) {
      if (!lungs[r * columns + c]) continue;
      if (first < 0) first = c;
      last = c;
    }
    if (first < 0) continue;
    lungTop = Math.min(lungTop, r);
    lungBottom = Math.max(lungBottom, r);
    spans[r] = widestGapHolding(lungs, r * columns, first, last, midline);
  }
  const known = spans.flatMap((s, r) => (s ? [r] : []));
  return spans.map((span, r): [number, number] => {
    if (span) return span;
    if (known.length === 0 || r > lungBottom) return [1, 0];
    const nearest = known.reduce((best, k) => (Math.abs(k - r) < Math.abs(best - r) ? k : best));
    return spans[nearest]!;
  });
}

/** The widest lung-free run in [first, last] of the row starting at `offset` that holds column `midline`. */
function widestGapHolding(lungs: ArrayLike<number>, offset: number, first: number, last: number, midline: number): [number, number] | undefined {
  let best: [number, number] | undefined;
  let start = -1;
  for (let c = first; c <= last + 1; c += 1) {
    const free = c <= last && !lungs[offset + c];
    if (free && start < 0) start = c;
    if (!free && start >= 0) {
      const run: [number, number] = [start, c - 1];
      if (run[0] <= midline && midline <= run[1] && (!best || run[1] - run[0] > best[1] - best[0])) best = run;
      start = -1;
    }
  }
  return best;
}

/** The body's middle column: halfway between its leftmost and rightmost voxel on the slice. */
function bodyMidline(slice: CoarseSlice): number {
  let left = slice.columns;
  let right = -1;
  for (let i = 0; i < slice.rows * slice.columns; i += 1) {
    if (!slice.body[i]) continue;
    const c = i % slice.columns;
    left = Math.min(left, c);
    right = Math.max(right, c);
  }
  return right < 0 ? (slice.columns - 1) / 2 : (left + right) / 2;
}
