/**
 * The CT volume as the pipeline sees it: slices sorted along the slice normal, voxels in Hounsfield units, with the
 * geometry and source references a derived series needs to land exactly on its source.
 */

/** A dcmjs "naturalized" dataset: DICOM keywords as keys (PixelData removed where the volume holds the voxels). */
export type NaturalizedDataset = Record<string, unknown>;

export type Vector3 = [number, number, number];

export interface SourceSliceReference {
  sopClassUID: string;
  sopInstanceUID: string;
}

export interface CtVolume {
  studyInstanceUID: string;
  seriesInstanceUID: string;
  frameOfReferenceUID: string;
  rows: number;
  columns: number;
  /** Number of slices (= hu.length / (rows * columns)). */
  slices: number;
  /** HU, slice-major: voxel (slice k, row r, column c) is at k * rows * columns + r * columns + c. */
  hu: Float32Array;
  /** PixelSpacing as DICOM orders it: [row spacing (between rows), column spacing (between columns)], mm. */
  pixelSpacing: [number, number];
  /** Distance between consecutive slice positions along the normal, mm (checked to be uniform within tolerance). */
  sliceSpacing: number;
  /** ImageOrientationPatient, shared by every slice: row direction cosines then column direction cosines. */
  imageOrientationPatient: [number, number, number, number, number, number];
  /** ImagePositionPatient of each slice, in volume order (ascending along the normal row x column). */
  imagePositionPatient: Vector3[];
  /** Which source instance each slice came from, in volume order. */
  sourceSlices: SourceSliceReference[];
  /** Header of each source slice (no PixelData), in volume order: patient, study and per-slice attributes to copy. */
  sliceHeaders: NaturalizedDataset[];
  /** Instances of the series that are not in the volume (localizers), each with why (volumes not read from DICOM: none). */
  leftOut?: string[];
}

/** How many slices of how many rows and columns: a volume's shape, without its voxels. */
export type VolumeShape = Pick<CtVolume, "slices" | "rows" | "columns">;

/** Slices [first, last] of a volume, as a volume of its own; the voxels are a view of the same memory. */
export function volumeSlab(volume: CtVolume, first: number, last: number): CtVolume {
  if (!(first >= 0 && last < volume.slices && first <= last)) throw new RangeError(`slab ${first}..${last} is not within ${volume.slices} slices`);
  const plane = volume.rows * volume.columns;
  return {
    ...volume,
    slices: last - first + 1,
    hu: volume.hu.subarray(first * plane, (last + 1) * plane),
    imagePositionPatient: volume.imagePositionPatient.slice(first, last + 1),
    sourceSlices: volume.sourceSlices.slice(first, last + 1),
    sliceHeaders: volume.sliceHeaders.slice(first, last + 1),
  };
}
