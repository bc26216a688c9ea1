/**
 * The pixel description of a CT slice stored as HU itself: Image Pixel (PS3.3 C.7.6.3) and the CT Image rescale
 * (C.8.2.1) for signed 16-bit values with slope 1 and intercept 0. What ct-enhance writes (derived series, the
 * converted demo series) is always stored this way.
 */
import type { NaturalizedDataset } from "./ct-volume.js";

export function huPixelModule(rows: number, columns: number): NaturalizedDataset {
  return {
    SamplesPerPixel: 1,
    PhotometricInterpretation: "MONOCHROME2",
    Rows: rows,
    Columns: columns,
    BitsAllocated: 16,
    BitsStored: 16,
    HighBit: 15,
    PixelRepresentation: 1,
    RescaleIntercept: "0",
    RescaleSlope: "1",
    RescaleType: "HU",
  };
}
