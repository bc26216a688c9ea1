/**
 * The patient coordinate system (LPS, mm) of a CT volume: slice normals, positions along them, and where a voxel
 * lies. PS3.3 C.7.6.2.1.1: ImageOrientationPatient holds the row then the column direction cosines.
 */
import type { CtVolume, Vector3 } from "./ct-volume.js";

export function cross(a: Vector3, b: Vector3): Vector3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

export const dot = (a: Vector3, b: Vector3): number => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];

/** The slice normal (row cosines x column cosines) of an ImageOrientationPatient, not normalised. */
export function sliceNormal(o: readonly number[]): Vector3 {
  return cross([o[0]!, o[1]!, o[2]!], [o[3]!, o[4]!, o[5]!]);
}

/** Patient coordinates (LPS, mm) of voxel (slice, row, column), fractional indices allowed. */
export function voxelToPatient(volume: CtVolume, slice: number, row: number, column: number): Vector3 {
  const [rowSpacing, columnSpacing] = volume.pixelSpacing;
  const iop = volume.imageOrientationPatient;
  const lower = Math.max(0, Math.min(volume.slices - 1, Math.floor(slice)));
  const upper = Math.min(volume.slices - 1, lower + 1);
  const t = slice - lower;
  const a = volume.imagePositionPatient[lower]!;
  const b = volume.imagePositionPatient[upper]!;
  const origin = [0, 1, 2].map((i) => a[i]! + (b[i]! - a[i]!) * t);
  // Along a row the column index grows: row direction cosines x column spacing; down the rows: column cosines x row spacing.
  return [0, 1, 2].map((i) => origin[i]! + column * columnSpacing * iop[i]! + row * rowSpacing * iop[3 + i]!) as Vector3;
}
