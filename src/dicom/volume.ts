/**
 * Volume assembly: the instances of one CT series (Part-10 bytes, in any order) become one HU volume, slices sorted
 * along the slice normal (row cosines x column cosines), with the checks that make a stack of slices a volume:
 * one orientation, one matrix size and pixel spacing, one frame of reference, no duplicate positions, uniform
 * spacing, enough slices. Every refusal is a VolumeError (not retryable) that names the slice and what is
 * wrong with it, in words a PACS administrator can act on.
 *
 * Memory and time: each instance is parsed as it arrives, header only (dcmjs stops at PixelData), and its pixels are
 * converted to HU straight from the received bytes into the next free slice of the float32 volume, while the next
 * instance is still on the wire; the received bytes are dropped at once. With `expectedSlices` (the count Orthanc
 * reports) the volume is allocated once at its final size. After the checks, the slices are put in position order
 * in place (one spare slice), so the series is never held twice.
 */
import { turnTaker } from "../event-loop.js";
import { imageTypeOf, type ParsedSlice, parseSlice, storedToHu } from "./ct-slice.js";
import type { CtVolume, SourceSliceReference, Vector3 } from "./ct-volume.js";
import { VolumeError } from "./dicom-errors.js";
import { cross, dot } from "./geometry.js";

export interface VolumeAssemblyOptions {
  /** How many instances to expect (e.g. Orthanc's count): the volume is allocated at that size from the start. */
  expectedSlices?: number;
  /** Fewer slices than this is not a volume (a scout, a partial series). Default 10. */
  minSlices?: number;
  /** Largest difference allowed between two slices' direction cosines. Default 1e-3 (about 0.06 degrees). */
  orientationTolerance?: number;
  /** A gap may differ from the series spacing by max(relative x spacing, absoluteMm). Default 1% and 0.01 mm. */
  spacingTolerance?: { relative: number; absoluteMm: number };
}

export const DEFAULT_MIN_SLICES = 10;

function refuse(message: string): VolumeError {
  return new VolumeError(message);
}

/** Groups values that agree within a predicate; the largest group is "the series". */
function majority<T>(slices: ParsedSlice[], valueOf: (s: ParsedSlice) => T, same: (a: T, b: T) => boolean) {
  const groups: { value: T; members: ParsedSlice[] }[] = [];
  for (const slice of slices) {
    const value = valueOf(slice);
    const group = groups.find((g) => same(g.value, value));
    if (group) group.members.push(slice);
    else groups.push({ value, members: [slice] });
  }
  groups.sort((a, b) => b.members.length - a.members.length);
  const [main, ...others] = groups;
  return { main: main!, outliers: others.flatMap((g) => g.members) };
}

function checkConsistent<T>(
  slices: ParsedSlice[],
  what: string,
  valueOf: (s: ParsedSlice) => T,
  same: (a: T, b: T) => boolean,
  show: (v: T) => string,
): void {
  const { main, outliers } = majority(slices, valueOf, same);
  if (outliers.length === 0) return;
  const first = outliers[0]!;
  const more = outliers.length > 1 ? ` (and ${outliers.length - 1} more slice(s) differ)` : "";
  throw refuse(
    `${first.label} has ${what} ${show(valueOf(first))} but the other ${main.members.length} slice(s) of the series ` +
      `have ${show(main.value)}${more}; the series mixes images that do not form one volume`,
  );
}

const fmt = (v: number, digits = 4) => Number(v.toFixed(digits)).toString();
const showVector = (v: readonly number[]) => `[${v.map((x) => fmt(x)).join(", ")}]`;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * The volume's voxels, in shared memory: the inference worker reads them without a copy, and the output checks still
 * have the input while the model's output streams in.
 */
function allocateVolume(slices: number, plane: number): Float32Array {
  try {
    return new Float32Array(new SharedArrayBuffer(slices * plane * 4));
  } catch (error) {
    const mib = Math.round((slices * plane * 4) / 2 ** 20);
    throw new VolumeError(`cannot allocate ${slices} slices of ${plane} float32 voxels (${mib} MiB)`, { retryable: true, cause: error });
  }
}

/**
 * The HU slices as they arrive. With an expected count, each slice is converted at once into the next slot of a
 * buffer of that many slices, which becomes the volume; without one (or past it) the stored 16-bit values wait and
 * are converted at the end. Slices whose matrix differs from the first slice's are never converted: the
 * consistency checks refuse the series anyway.
 */
class ArrivalSlices {
  private buffer: Float32Array | undefined;
  private used = 0;
  private plane = 0;

  constructor(private readonly expected: number | undefined) {}

  add(slice: ParsedSlice): void {
    const plane = slice.rows * slice.columns;
    if (this.plane === 0) {
      this.plane = plane;
      if (this.expected !== undefined && this.expected > 0) this.buffer = allocateVolume(this.expected, plane);
    }
    if (!this.buffer || plane !== this.plane || this.used === this.expected) return;
    storedToHu(slice, this.buffer.subarray(this.used * plane, (this.used + 1) * plane));
    slice.stored = undefined;
    slice.slot = this.used;
    this.used += 1;
  }

  /** The volume, slices in the given (position) order; the event loop gets a turn every ~15 ms (a reorder moves 261 MiB). */
  async volume(sorted: ParsedSlice[]): Promise<Float32Array> {
    const plane = this.plane;
    const buffer = this.buffer;
    this.buffer = undefined;
    if (buffer && this.used === sorted.length && buffer.length === sorted.length * plane) {
      return permuteSlices(buffer, plane, sorted.map((s) => s.slot));
    }
    const hu = allocateVolume(sorted.length, plane);
    const takeTurn = turnTaker();
    for (const [k, slice] of sorted.entries()) {
      await takeTurn();
      const target = hu.subarray(k * plane, (k + 1) * plane);
      if (slice.slot >= 0) target.set(buffer!.subarray(slice.slot * plane, (slice.slot + 1) * plane));
      else storedToHu(slice, target);
      slice.stored = undefined;
    }
    return hu;
  }
}

/** Reorders slices in place so that slice k becomes what was in slot order[k]: cycle by cycle, one spare slice. */
async function permuteSlices(hu: Float32Array, plane: number, order: number[]): Promise<Float32Array> {
  const spare = new Float32Array(plane);
  const placed = new Uint8Array(order.length);
  const takeTurn = turnTaker();
  for (let start = 0; start < order.length; start += 1) {
    if (placed[start] || order[start] === start) continue;
    spare.set(hu.subarray(start * plane, (start + 1) * plane));
    for (let k = start; ;) {
      await takeTurn();
      placed[k] = 1;
      const from = order[k]!;
      if (from === start) {
        hu.set(spare, k * plane);
        break;
      }
      hu.copyWithin(k * plane, from * plane, (from + 1) * plane);
      k = from;
    }
  }
  return hu;
}

/**
 * Assembles the instances of one CT series into a volume in Hounsfield units. Instances may arrive in any order
 * (an async iterable streams them from WADO-RS). Throws a VolumeError naming the slice.
 */
export async function assembleVolume(
  instances: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  options: VolumeAssemblyOptions = {},
): Promise<CtVolume> {
  const minSlices = options.minSlices ?? DEFAULT_MIN_SLICES;
  const orientationTolerance = options.orientationTolerance ?? 1e-3;
  const spacingTolerance = options.spacingTolerance ?? { relative: 0.01, absoluteMm: 0.01 };

  const slices: ParsedSlice[] = [];
  /** Instances received but not part of the volume (localizers), each with why: the job's timeline shows them. */
  const leftOut: string[] = [];
  const arrived = new ArrivalSlices(options.expectedSlices);
  const takeTurn = turnTaker();
  let received = 0;
  for await (const bytes of instances) {
    const slice = parseSlice(bytes, received);
    received += 1;
    if (slice.localizer) {
      // A scanner may put its scout into the axial series; it is a projection, not a slice of the volume.
      leftOut.push(`${slice.label} is a localizer (ImageType ${imageTypeOf(slice.header).join("\\")}): left out of the volume`);
      continue;
    }
    arrived.add(slice);
    slices.push(slice);
    await takeTurn();
  }

  const needed = Math.max(minSlices, 2);
  if (slices.length < needed) {
    const localizers = leftOut.length > 0 ? ` (and ${leftOut.length} localizer(s), left out)` : "";
    throw refuse(`the series has ${slices.length} slice(s)${localizers}; at least ${needed} are needed to form a volume`);
  }

  checkConsistent(slices, "StudyInstanceUID", (s) => s.studyInstanceUID, (a, b) => a === b, String);
  checkConsistent(slices, "SeriesInstanceUID", (s) => s.seriesInstanceUID, (a, b) => a === b, String);
  checkConsistent(slices, "FrameOfReferenceUID", (s) => s.frameOfReferenceUID, (a, b) => a === b, String);
  checkConsistent(
    slices,
    "a matrix of",
    (s) => [s.rows, s.columns] as const,
    (a, b) => a[0] === b[0] && a[1] === b[1],
    (v) => `${v[0]} rows x ${v[1]} columns`,
  );
  checkConsistent(
    slices,
    "PixelSpacing",
    (s) => s.pixelSpacing,
    (a, b) => Math.abs(a[0] - b[0]) <= 1e-4 * Math.max(a[0], 1) && Math.abs(a[1] - b[1]) <= 1e-4 * Math.max(a[1], 1),
    (v) => `${showVector(v)} mm`,
  );
  checkConsistent(
    slices,
    "ImageOrientationPatient",
    (s) => s.orientation,
    (a, b) => a.every((x, i) => Math.abs(x - b[i]!) <= orientationTolerance),
    showVector,
  );

  const reference = slices[0]!;
  const rowCosines: Vector3 = [reference.orientation[0], reference.orientation[1], reference.orientation[2]];
  const columnCosines: Vector3 = [reference.orientation[3], reference.orientation[4], reference.orientation[5]];
  const normal = cross(rowCosines, columnCosines);
  const normalLength = Math.hypot(...normal);
  const unitLength = (v: Vector3) => Math.abs(Math.hypot(...v) - 1) <= 0.01;
  if (!unitLength(rowCosines) || !unitLength(columnCosines) || Math.abs(normalLength - 1) > 0.01) {
    throw refuse(
      `ImageOrientationPatient ${showVector(reference.orientation)} is not two perpendicular unit vectors; ` +
        "the slice normal is undefined",
    );
  }
  const unitNormal: Vector3 = [normal[0] / normalLength, normal[1] / normalLength, normal[2] / normalLength];
  for (const slice of slices) slice.along = dot(unitNormal, slice.position);
  slices.sort((a, b) => a.along - b.along);

  checkAcquisitionsApart(slices, spacingTolerance.absoluteMm);
  const gaps = slices.slice(1).map((s, i) => s.along - slices[i]!.along);
  const spacing = median(gaps);
  const tolerance = Math.max(spacingTolerance.relative * spacing, spacingTolerance.absoluteMm);
  for (let k = 0; k < gaps.length; k += 1) {
    const a = slices[k]!;
    const b = slices[k + 1]!;
    if (gaps[k]! <= spacingTolerance.absoluteMm) {
      throw refuse(
        `slices ${k + 1} and ${k + 2} (in position order) share the position ${fmt(a.along, 3)} mm along ` +
          `the slice normal: ${a.label} and ${b.label} (duplicate instances, or two acquisitions in one series?)`,
      );
    }
  }
  if (spacing <= 0 || !Number.isFinite(spacing)) {
    throw refuse(`the slices have no usable spacing (median gap ${spacing} mm)`);
  }
  const irregular = gaps.map((g, k) => ({ g, k })).filter(({ g }) => Math.abs(g - spacing) > tolerance);
  if (irregular.length > 0) {
    const { g, k } = irregular[0]!;
    const a = slices[k]!;
    const b = slices[k + 1]!;
    let hint = "uneven reconstruction?";
    if (g < spacing) hint = "extra or overlapping slice?";
    else if (Math.round(g / spacing) >= 2) hint = "missing slice?";
    const more = irregular.length > 1 ? `; ${irregular.length - 1} other gap(s) are irregular too` : "";
    throw refuse(
      `slices ${k + 1} and ${k + 2} (in position order: ${a.label} and ${b.label}) are ${fmt(g, 3)} mm ` +
        `apart where the series spacing is ${fmt(spacing, 3)} mm (${hint})${more}`,
    );
  }

  const { rows, columns } = reference;
  const hu = await arrived.volume(slices);

  const first = slices[0]!;
  const last = slices[slices.length - 1]!;
  const sourceSlices: SourceSliceReference[] = slices.map((s) => ({
    sopClassUID: s.sopClassUID,
    sopInstanceUID: s.sopInstanceUID,
  }));
  return {
    studyInstanceUID: first.studyInstanceUID,
    seriesInstanceUID: first.seriesInstanceUID,
    frameOfReferenceUID: first.frameOfReferenceUID,
    rows,
    columns,
    slices: slices.length,
    hu,
    pixelSpacing: [...first.pixelSpacing],
    sliceSpacing: (last.along - first.along) / (slices.length - 1),
    imageOrientationPatient: [...reference.orientation],
    imagePositionPatient: slices.map((s) => [...s.position] as Vector3),
    sourceSlices,
    sliceHeaders: slices.map((s) => s.header),
    leftOut,
  };
}

/**
 * Two acquisitions (AcquisitionNumber) whose slices overlap along the normal are two stacks interleaved in one series
 * (arterial and portal phases, two reconstructions), at the same positions or between each other: no one volume.
 * Acquisitions one after another along the normal (a scanner's axial mode numbers each rotation) are one volume.
 */
function checkAcquisitionsApart(sorted: ParsedSlice[], toleranceMm: number): void {
  const extents = new Map<string, { first: number; last: number; count: number }>();
  for (const slice of sorted) {
    if (slice.acquisitionNumber === undefined) continue;
    const extent = extents.get(slice.acquisitionNumber);
    if (extent) Object.assign(extent, { last: slice.along, count: extent.count + 1 });
    else extents.set(slice.acquisitionNumber, { first: slice.along, last: slice.along, count: 1 });
  }
  const all = [...extents.entries()];
  for (const [i, [a, ea]] of all.entries()) {
    for (const [b, eb] of all.slice(i + 1)) {
      if (ea.last + toleranceMm < eb.first || eb.last + toleranceMm < ea.first) continue;
      const [lo, hi] = [a, b].sort((x, y) => Number(x) - Number(y) || x.localeCompare(y));
      const range = (e: { first: number; last: number; count: number }) => `${e.count} slice(s) from ${fmt(e.first, 3)} to ${fmt(e.last, 3)} mm`;
      throw refuse(
        `acquisitions ${lo} and ${hi} (AcquisitionNumber) overlap along the slice normal (${a}: ${range(ea)}; ${b}: ${range(eb)}): ` +
          "the series holds interleaved stacks (two phases or reconstructions in one series?), not one volume",
      );
    }
  }
}
