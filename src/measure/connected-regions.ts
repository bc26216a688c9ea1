/**
 * Connected regions of a sparse set of voxels on a [slices, rows, columns] grid: the output checks mark the few
 * voxels a model brightened where it should not, so the set is kept as the voxels' flat indices (a few MB even for a
 * model that brightens a tenth of a chest), not as a whole-volume mask. Regions are 6-connected (faces, not edges or
 * corners), found by union-find over the sorted indices. A second set can mark voxels that disqualify the region they
 * join (the blood pool: a region reaching it is the pool's own brightening, or is judged by other checks).
 */

export interface GridShape {
  slices: number;
  rows: number;
  columns: number;
}

export interface Region {
  voxels: number;
  /** The region's first and last slice (0-based). */
  firstSlice: number;
  lastSlice: number;
}

/** Flat voxel indices, appended in any order; `largestRegion` sorts them once. */
export class VoxelSet {
  private data = new Int32Array(1024);
  private length = 0;

  add(index: number): void {
    if (this.length === this.data.length) {
      const grown = new Int32Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.length] = index;
    this.length += 1;
  }

  get size(): number {
    return this.length;
  }

  /** The indices ascending, each once. */
  sorted(): Int32Array {
    const all = this.data.subarray(0, this.length).slice().sort();
    let n = 0;
    for (let i = 0; i < all.length; i += 1) if (i === 0 || all[i] !== all[i - 1]) all[n++] = all[i]!;
    return all.subarray(0, n);
  }
}

/** Position of `value` in the ascending `sorted[0, end)`, or -1. */
function indexOf(sorted: Int32Array, value: number, end: number): number {
  let lo = 0;
  let hi = end - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = sorted[mid]!;
    if (v === value) return mid;
    if (v < value) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/** Both sets' voxels ascending, with whether each is in `joining` (a voxel in both counts as joining). */
function merged(set: VoxelSet, joining: VoxelSet | undefined): { voxels: Int32Array; joins: Uint8Array } {
  const a = set.sorted();
  const b = joining ? joining.sorted() : new Int32Array(0);
  const voxels = new Int32Array(a.length + b.length);
  const joins = new Uint8Array(a.length + b.length);
  let i = 0;
  let j = 0;
  let n = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && a[i]! < b[j]!)) {
      voxels[n++] = a[i++]!;
    } else {
      if (i < a.length && a[i] === b[j]) i += 1;
      voxels[n] = b[j++]!;
      joins[n++] = 1;
    }
  }
  return { voxels: voxels.subarray(0, n), joins: joins.subarray(0, n) };
}

/**
 * The largest 6-connected region of the set that reaches no voxel of `joining` (voxels 0 when there is none); the
 * joining voxels connect regions through them but are not counted.
 */
export function largestRegion(set: VoxelSet, shape: GridShape, joining?: VoxelSet): Region {
  const { voxels, joins } = merged(set, joining);
  const n = voxels.length;
  const parent = Int32Array.from({ length: n }, (_, i) => i);
  const root = (i: number): number => {
    let r = i;
    while (parent[r] !== r) r = parent[r]!;
    while (parent[i] !== r) {
      const next = parent[i]!;
      parent[i] = r;
      i = next;
    }
    return r;
  };
  const join = (a: number, b: number): void => {
    const ra = root(a);
    const rb = root(b);
    if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
  };
  const plane = shape.rows * shape.columns;
  for (let i = 0; i < n; i += 1) {
    const v = voxels[i]!;
    const within = v % plane;
    // the neighbours before it: left in its row, above in its slice, the same place on the slice before
    if (within % shape.columns > 0 && i > 0 && voxels[i - 1] === v - 1) join(i, i - 1);
    if (within >= shape.columns) {
      const up = indexOf(voxels, v - shape.columns, i);
      if (up >= 0) join(i, up);
    }
    if (v >= plane) {
      const below = indexOf(voxels, v - plane, i);
      if (below >= 0) join(i, below);
    }
  }
  const size = new Int32Array(n);
  const first = new Int32Array(n).fill(shape.slices);
  const last = new Int32Array(n).fill(-1);
  const joined = new Uint8Array(n);
  for (let i = 0; i < n; i += 1) if (joins[i]) joined[root(i)] = 1;
  let best = -1;
  for (let i = 0; i < n; i += 1) {
    const r = root(i);
    if (joined[r]) continue;
    const slice = Math.floor(voxels[i]! / plane);
    size[r] = size[r]! + 1;
    first[r] = Math.min(first[r]!, slice);
    last[r] = Math.max(last[r]!, slice);
    if (best < 0 || size[r]! > size[best]!) best = r;
  }
  return best < 0 ? { voxels: 0, firstSlice: -1, lastSlice: -1 } : { voxels: size[best]!, firstSlice: first[best]!, lastSlice: last[best]! };
}
