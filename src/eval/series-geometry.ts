/**
 * Two series can be compared voxel by voxel only if they sample the same places: same matrix, pixel spacing,
 * orientation and slice positions (a derived series written by ct-enhance lands exactly on its source). The first
 * difference is named, so the user knows which series to fix or resample.
 */
import type { CtVolume } from "../dicom/ct-volume.js";

/** Positions may differ by this much (mm): DICOM decimal strings round to ~1e-4 mm. */
export const POSITION_TOLERANCE_MM = 0.01;
const SPACING_TOLERANCE_MM = 1e-3;
const ORIENTATION_TOLERANCE = 1e-4;

const show = (values: readonly number[]): string => `[${values.map((v) => Number(v.toFixed(4))).join(", ")}]`;

/** Undefined when the candidate lies on the reference's voxels; otherwise what differs, in words. */
export function geometryDifference(reference: CtVolume, candidate: CtVolume): string | undefined {
  if (reference.rows !== candidate.rows || reference.columns !== candidate.columns) {
    return `the reference has ${reference.rows}x${reference.columns} pixels per slice, the candidate ${candidate.rows}x${candidate.columns}`;
  }
  if (reference.slices !== candidate.slices) {
    return `the reference has ${reference.slices} slices, the candidate ${candidate.slices}`;
  }
  if (reference.pixelSpacing.some((v, i) => Math.abs(v - candidate.pixelSpacing[i]!) > SPACING_TOLERANCE_MM)) {
    return `PixelSpacing differs: reference ${show(reference.pixelSpacing)} mm, candidate ${show(candidate.pixelSpacing)} mm`;
  }
  const orientation = reference.imageOrientationPatient;
  if (orientation.some((v, i) => Math.abs(v - candidate.imageOrientationPatient[i]!) > ORIENTATION_TOLERANCE)) {
    return `ImageOrientationPatient differs: reference ${show(orientation)}, candidate ${show(candidate.imageOrientationPatient)}`;
  }
  for (let k = 0; k < reference.slices; k += 1) {
    const a = reference.imagePositionPatient[k]!;
    const b = candidate.imagePositionPatient[k]!;
    const distance = Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
    if (distance > POSITION_TOLERANCE_MM) {
      return (
        `slice ${k + 1} (in position order) is at ImagePositionPatient ${show(a)} mm in the reference and ${show(b)} mm ` +
        `in the candidate (${Number(distance.toFixed(3))} mm apart)`
      );
    }
  }
  return undefined;
}
