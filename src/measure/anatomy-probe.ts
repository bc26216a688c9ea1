/**
 * What a CT volume shows, measured rather than read from its headers (which lie: a whole-body scan labelled THYROID,
 * an arterial phase with an empty ContrastBolusAgent): the body, the air-filled lungs (volume, left and right, where
 * they start and end), which regions the volume covers (head or neck above the lungs, chest, abdomen below), the
 * blood pool's HU (contrast or not) and the image noise. Deterministic, on the CPU, ~0.3 s for 261 slices of 512x512,
 * with turns of the event loop. Intended use (intended-use.ts) is judged on it.
 */
import type { CtVolume } from "../dicom/ct-volume.js";
import { type BloodAndNoise, bloodAndNoise, TRUNK_MIN_CM2 } from "./blood-and-noise.js";
import { type BodyAndLungs, bodyAndLungs } from "./body-and-lungs.js";
import { type CoarseVolume, coarseVolume } from "./coarse-volume.js";

export type BodyRegion = "head" | "chest" | "abdomen";
export type ContrastState = "non-contrast" | "contrast" | "unknown";

/**
 * A slice shows lungs from this much lung cross-section on, and from this share of the largest: the airways (trachea,
 * pharynx, nasal cavity, sinuses) are part of the lungs' air, but never this large.
 */
const LUNG_SLICE_CM2 = 5;
const LUNG_SLICE_SHARE = 0.1;
/** Blood at or above this HU is contrast-enhanced; below NON_CONTRAST_MAX_HU it is not; between, unknown. */
export const CONTRAST_MIN_HU = 110;
export const NON_CONTRAST_MAX_HU = 90;

export interface AnatomyProbe {
  slices: number;
  /** Extent of the volume along the slice normal, mm. */
  zExtentMm: number;
  bodyMedianAreaCm2: number;
  lungs: {
    volumeMl: number;
    leftMl: number;
    rightMl: number;
    /** Slices (volume order) of the first and last lung slice; -1 without lungs. */
    firstSlice: number;
    lastSlice: number;
    /** The lung apices end inside the volume (the most superior slice has no lung), and so do the bases. */
    apexInside: boolean;
    baseInside: boolean;
  };
  /** How far the volume extends over each region, mm (slices above the lungs count as head/neck, below as abdomen). */
  coverageMm: Record<BodyRegion, number>;
  /** The regions the volume shows (at least 50 mm of each, or half of a shorter volume; chest needs lungs). */
  regions: BodyRegion[];
  bloodPoolHu: number | undefined;
  contrast: ContrastState;
  /** Image noise: the smaller of the fat boxes' and the soft-tissue boxes' median SD. */
  noiseHu: number | undefined;
  fatNoiseHu: number | undefined;
  tissueNoiseHu: number | undefined;
  /** One line for a job's timeline. */
  summary: string;
}

/** The probe with the masks it was measured on, for the checks that need them (lung gating, tissue regions). */
export interface ProbedVolume {
  probe: AnatomyProbe;
  coarse: CoarseVolume;
  anatomy: BodyAndLungs;
  bloodAndNoise: BloodAndNoise;
}

const round = (v: number, digits = 0): number => Number(v.toFixed(digits));

export async function probeVolume(volume: CtVolume): Promise<ProbedVolume> {
  const coarse = await coarseVolume(volume);
  const anatomy = await bodyAndLungs(coarse);
  const measured = await bloodAndNoise(volume, coarse, anatomy);
  return { probe: describe(volume, coarse, anatomy, measured), coarse, anatomy, bloodAndNoise: measured };
}

/**
 * The probe of slices first..last of a probed volume (the slab a model runs on), cut from the whole volume's masks
 * rather than measured again: the same lungs and body, slice for slice, at no cost. `probe` stays the whole volume's
 * description (what the decision was made on); the blood-pool and noise slices are renumbered from the slab's start.
 */
export function probedSlab(probed: ProbedVolume, first: number, last: number): ProbedVolume {
  const { coarse, anatomy, bloodAndNoise: measured } = probed;
  if (!(first >= 0 && last < coarse.slices && first <= last)) throw new RangeError(`slab ${first}..${last} is not within ${coarse.slices} slices`);
  const plane = coarse.rows * coarse.columns;
  const cut = (mask: Uint8Array): Uint8Array => mask.subarray(first * plane, (last + 1) * plane);
  const inSlab = (k: number): boolean => k >= first && k <= last;
  return {
    probe: probed.probe,
    coarse: { ...coarse, slices: last - first + 1, hu: coarse.hu.subarray(first * plane, (last + 1) * plane), zMm: coarse.zMm.slice(first, last + 1) },
    anatomy: {
      ...anatomy,
      body: cut(anatomy.body),
      lungs: cut(anatomy.lungs),
      bodyAreaCm2: anatomy.bodyAreaCm2.slice(first, last + 1),
      lungAreaCm2: anatomy.lungAreaCm2.slice(first, last + 1),
    },
    bloodAndNoise: {
      ...measured,
      noiseSlices: measured.noiseSlices.filter(inSlab).map((k) => k - first),
      bloodPoolSlices: measured.bloodPoolSlices.filter((b) => inSlab(b.slice)).map((b) => ({ ...b, slice: b.slice - first })),
    },
  };
}

function describe(volume: CtVolume, coarse: CoarseVolume, anatomy: BodyAndLungs, measured: BloodAndNoise): AnatomyProbe {
  const { slices } = volume;
  const largest = Math.max(0, ...anatomy.lungAreaCm2);
  const lungSlices = anatomy.lungAreaCm2.flatMap((area, k) => (area >= Math.max(LUNG_SLICE_CM2, LUNG_SLICE_SHARE * largest) ? [k] : []));
  const hasLungs = lungSlices.length > 0 && anatomy.lungMl >= 100;
  const firstSlice = hasLungs ? lungSlices[0]! : -1;
  const lastSlice = hasLungs ? lungSlices[lungSlices.length - 1]! : -1;
  // Volume order is ascending along the normal; superiorLast says which end is the head's.
  const [inferior, superior] = coarse.superiorLast ? [firstSlice, lastSlice] : [lastSlice, firstSlice];
  const inferiorEnd = coarse.superiorLast ? 0 : slices - 1;
  const superiorEnd = coarse.superiorLast ? slices - 1 : 0;
  const coverageMm: Record<BodyRegion, number> = { head: 0, chest: 0, abdomen: 0 };
  const areas = anatomy.bodyAreaCm2;
  for (let k = 0; k < slices; k += 1) {
    if ((areas[k] ?? 0) < 20) continue; // no body on this slice
    const aboveLungs = hasLungs && (coarse.superiorLast ? k > lastSlice : k < firstSlice);
    const belowLungs = hasLungs && (coarse.superiorLast ? k < firstSlice : k > lastSlice);
    if (hasLungs && !aboveLungs && !belowLungs) coverageMm.chest += volume.sliceSpacing;
    else if (aboveLungs) coverageMm.head += volume.sliceSpacing;
    else if (belowLungs || areas[k]! >= TRUNK_MIN_CM2) coverageMm.abdomen += volume.sliceSpacing;
    else coverageMm.head += volume.sliceSpacing;
  }
  // A region counts from 50 mm of it on, or from half of a shorter volume (a 30 mm slab of chest is chest).
  const counted = Math.min(50, (volume.sliceSpacing * slices) / 2);
  const regions = (Object.keys(coverageMm) as BodyRegion[]).filter((r) => coverageMm[r] >= counted);
  const bloodPoolHu = measured.bloodPoolHu;
  const contrast: ContrastState = bloodPoolHu === undefined
    ? "unknown"
    : bloodPoolHu >= CONTRAST_MIN_HU ? "contrast" : bloodPoolHu < NON_CONTRAST_MAX_HU ? "non-contrast" : "unknown";
  // Structure only adds to a box's spread: the quieter of the two is the nearer to the noise.
  const quieter = (a: number | undefined, b: number | undefined): number | undefined =>
    a === undefined ? b : b === undefined ? a : Math.min(a, b);
  const noiseHu = quieter(measured.fatNoiseHu, measured.tissueNoiseHu);
  const sortedAreas = areas.filter((a) => a >= 20).sort((a, b) => a - b);
  const probe: AnatomyProbe = {
    slices,
    zExtentMm: round(volume.sliceSpacing * (slices - 1), 1),
    bodyMedianAreaCm2: round(sortedAreas[sortedAreas.length >> 1] ?? 0),
    lungs: {
      volumeMl: round(anatomy.lungMl),
      leftMl: round(anatomy.leftLungMl),
      rightMl: round(anatomy.rightLungMl),
      firstSlice,
      lastSlice,
      apexInside: hasLungs && superior !== superiorEnd,
      baseInside: hasLungs && inferior !== inferiorEnd,
    },
    coverageMm: { head: round(coverageMm.head), chest: round(coverageMm.chest), abdomen: round(coverageMm.abdomen) },
    regions,
    bloodPoolHu: bloodPoolHu === undefined ? undefined : round(bloodPoolHu),
    contrast,
    noiseHu: noiseHu === undefined ? undefined : round(noiseHu, 1),
    fatNoiseHu: measured.fatNoiseHu === undefined ? undefined : round(measured.fatNoiseHu, 1),
    tissueNoiseHu: measured.tissueNoiseHu === undefined ? undefined : round(measured.tissueNoiseHu, 1),
    summary: "",
  };
  probe.summary = summaryOf(probe);
  return probe;
}

function summaryOf(p: AnatomyProbe): string {
  const covered = (Object.entries(p.coverageMm) as [BodyRegion, number][]).filter(([, mm]) => mm > 0)
    .map(([region, mm]) => `${region} ${mm} mm`).join(", ");
  const lungs = p.lungs.volumeMl > 0
    ? `lungs ${p.lungs.volumeMl} ml (left ${p.lungs.leftMl}, right ${p.lungs.rightMl}; apex ${p.lungs.apexInside ? "inside" : "cut"}, base ${p.lungs.baseInside ? "inside" : "cut"})`
    : "no lungs";
  const blood = p.bloodPoolHu === undefined ? "blood pool not found" : `blood pool ${p.bloodPoolHu} HU (${p.contrast})`;
  const noise = p.noiseHu === undefined ? "noise not measured" : `noise ${p.noiseHu} HU`;
  return `${p.regions.join("+") || "no region"} (${covered}); ${lungs}; ${blood}; ${noise}`;
}
