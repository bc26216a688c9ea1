/**
 * Synthetic CT volumes with known anatomy, for the probe and the checks (fast, no data needed): 384x384 slices of
 * 0.9 mm pixels, 2.5 mm apart, patient supine, the last slice the most superior. Parts from the feet up:
 * - abdomen: a wide soft-tissue trunk (40 HU) in a fat ring (-100 HU), spine and aorta;
 * - chest: the same trunk with two lungs (-850 HU) that taper at base and apex;
 * - head: a skull (1000 HU) around brain (35 HU), no lungs, no spine in front of which an aorta lies.
 * The aorta (a 12 mm radius disk in front of the spine, left of the midline) holds `bloodHu`, and so does the heart
 * when asked for (PHANTOM_HEART). Gaussian noise of
 * `noiseSd` HU (seeded) is added inside the body.
 */
import type { CtVolume, Vector3 } from "../../src/dicom/ct-volume.js";

export interface PhantomParts {
  abdomen?: number;
  chest?: number;
  head?: number;
}

export interface PhantomOptions {
  /** Slices of each part. */
  parts: PhantomParts;
  bloodHu?: number;
  /** A heart (a 28 mm radius disk of blood in front of the aorta, left of the midline) that indents the left lung. */
  heart?: boolean;
  noiseSd?: number;
  seed?: number;
}

export const PHANTOM = { rows: 384, columns: 384, pixelMm: 0.9, sliceMm: 2.5 } as const;

function gaussian(seed: number): () => number {
  let state = seed;
  const uniform = (): number => ((state = (state * 1103515245 + 12345) % 2147483648) + 0.5) / 2147483648;
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** In-plane position (mm from the slice centre; +x patient left, +y posterior) of pixel (r, c). */
const mm = (index: number): number => (index - (PHANTOM.columns - 1) / 2) * PHANTOM.pixelMm;
const inEllipse = (x: number, y: number, cx: number, cy: number, rx: number, ry: number): boolean =>
  ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1;

/** The heart's disk (mm): centre x, centre y, radius; drawn on the chest slices with lungs, over the left lung. */
export const PHANTOM_HEART = { x: 10, y: -45, radius: 28 } as const;

function trunkSlice(out: Float32Array, lungScale: number, bloodHu: number, heart = false): void {
  for (let r = 0; r < PHANTOM.rows; r += 1) {
    for (let c = 0; c < PHANTOM.columns; c += 1) {
      const x = mm(c);
      const y = mm(r);
      let hu = -1000;
      if (inEllipse(x, y, 0, 0, 160, 110)) hu = -100; // subcutaneous fat
      if (inEllipse(x, y, 0, 0, 145, 95)) hu = 40; // soft tissue
      if (lungScale > 0) {
        for (const side of [-1, 1]) {
          if (inEllipse(x, y, side * 70, -5, 50 * lungScale, 70 * lungScale)) hu = -850;
        }
      }
      const { x: hx, y: hy, radius } = PHANTOM_HEART;
      if (heart && lungScale > 0 && inEllipse(x, y, hx, hy, radius, radius)) hu = bloodHu;
      if (inEllipse(x, y, 0, 55, 20, 17)) hu = inEllipse(x, y, 0, 55, 17, 14) ? 250 : 800; // vertebral body
      if (inEllipse(x, y, 0, 85, 8, 14)) hu = 700; // posterior elements
      if (inEllipse(x, y, 12, 25, 12, 12)) hu = bloodHu; // aorta, in front of the spine, left of the midline
      out[r * PHANTOM.columns + c] = hu;
    }
  }
}

function headSlice(out: Float32Array): void {
  for (let r = 0; r < PHANTOM.rows; r += 1) {
    for (let c = 0; c < PHANTOM.columns; c += 1) {
      const x = mm(c);
      const y = mm(r);
      out[r * PHANTOM.columns + c] = inEllipse(x, y, 0, 0, 75, 92) ? (inEllipse(x, y, 0, 0, 68, 85) ? 35 : 1000) : -1000;
    }
  }
}

export function phantomVolume(options: PhantomOptions): CtVolume {
  const { abdomen = 0, chest = 0, head = 0 } = options.parts;
  const slices = abdomen + chest + head;
  const plane = PHANTOM.rows * PHANTOM.columns;
  const hu = new Float32Array(new SharedArrayBuffer(slices * plane * 4));
  const noise = gaussian(options.seed ?? 7);
  for (let k = 0; k < slices; k += 1) {
    const slice = hu.subarray(k * plane, (k + 1) * plane);
    if (k >= abdomen + chest) headSlice(slice);
    else if (k >= abdomen) {
      // Lungs grow from the base, are widest in the middle, and end before the apex.
      const t = (k - abdomen + 0.5) / chest;
      trunkSlice(slice, Math.max(0, Math.sin(Math.PI * t)) ** 0.5 * (t > 0.04 && t < 0.96 ? 1 : 0), options.bloodHu ?? 40, options.heart);
    } else trunkSlice(slice, 0, options.bloodHu ?? 40);
    if (options.noiseSd) {
      for (let i = 0; i < plane; i += 1) if (slice[i]! > -990) slice[i]! += options.noiseSd * noise();
    }
  }
  const positions = Array.from({ length: slices }, (_, k): Vector3 => [mm(0), mm(0), k * PHANTOM.sliceMm]);
  return {
    studyInstanceUID: "1.2.3",
    seriesInstanceUID: "1.2.3.4",
    frameOfReferenceUID: "1.2.3.5",
    rows: PHANTOM.rows,
    columns: PHANTOM.columns,
    slices,
    hu,
    pixelSpacing: [PHANTOM.pixelMm, PHANTOM.pixelMm],
    sliceSpacing: PHANTOM.sliceMm,
    imageOrientationPatient: [1, 0, 0, 0, 1, 0],
    imagePositionPatient: positions,
    sourceSlices: positions.map((_, k) => ({ sopClassUID: "1.2.840.10008.5.1.4.1.1.2", sopInstanceUID: `1.2.3.4.${k + 1}` })),
    sliceHeaders: positions.map(() => ({ Modality: "CT", SliceThickness: PHANTOM.sliceMm, KVP: 120 })),
  };
}

/** Both lungs' volume in the chest part, ml: the ellipses' areas summed over the slices (what the probe should find). */
export function phantomLungMl(chest: number): number {
  let ml = 0;
  for (let k = 0; k < chest; k += 1) {
    const t = (k + 0.5) / chest;
    const scale = t > 0.04 && t < 0.96 ? Math.max(0, Math.sin(Math.PI * t)) ** 0.5 : 0;
    ml += (2 * Math.PI * 50 * scale * 70 * scale * PHANTOM.sliceMm) / 1000;
  }
  return ml;
}
