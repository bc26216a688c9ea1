/**
 * Intended use, judged: the series (its measured anatomy, contrast and noise, and its geometry) against the model's
 * manifest. The answer is within (with the slab to process when the volume covers more than the model's regions) or
 * outside, with every reason in words a PACS administrator reads, e.g. "no lungs in the volume (0 ml);
 * nodule-detector-small is for chest CT ...". Headers are one input: for contrast, only when the image cannot say.
 */
import type { CtVolume, NaturalizedDataset } from "../dicom/ct-volume.js";
import type { AnatomyProbe, BodyRegion, ContrastState, ProbedVolume } from "../measure/anatomy-probe.js";
import type { ModelManifest, Range } from "../models/manifest.js";

export type IntendedUseVerdict =
  | { within: true; slab: { first: number; last: number } | undefined; notes: string[] }
  | { within: false; reasons: string[] };

const inRange = (value: number, range: Range): boolean =>
  (range.min === undefined || value >= range.min) && (range.max === undefined || value <= range.max);

const rangeText = (range: Range, unit: string): string =>
  range.min !== undefined && range.max !== undefined ? `${range.min}-${range.max} ${unit}`
    : range.min !== undefined ? `at least ${range.min} ${unit}` : `at most ${range.max} ${unit}`;

/** A header's number, to 2 decimals (DS values carry binary noise: 8.549999999999999). */
const number = (value: unknown): number | undefined => {
  const n = Number(Array.isArray(value) ? value[0] : value);
  return value === undefined || value === null || value === "" || !Number.isFinite(n) ? undefined : Math.round(n * 100) / 100;
};

/** The header's word on contrast: an agent or route, or a description that names contrast. */
function headerContrast(header: NaturalizedDataset): ContrastState {
  const said = [header.ContrastBolusAgent, header.ContrastBolusRoute].some((v) => typeof v === "string" && v.trim() !== "");
  const described = [header.SeriesDescription, header.StudyDescription, header.ProtocolName]
    .some((v) => typeof v === "string" && /contrast|\bc\+|\bw(ith)?\s*iv\b|arterial|venous|portal|angio/i.test(v) && !/non.?con|without|w\/o/i.test(v));
  return said || described ? "contrast" : "non-contrast";
}

/** The slices of each region, from the probe's per-slice lung areas (head above the lungs, abdomen below). */
function regionSlab(probed: ProbedVolume, regions: readonly BodyRegion[], marginSlices: number): { first: number; last: number } | undefined {
  const { probe, coarse } = probed;
  const { firstSlice, lastSlice } = probe.lungs;
  const last = probe.slices - 1;
  if (firstSlice < 0) return undefined;
  // In volume order: below the lungs [0, firstSlice) when the last slice is the most superior, else above them.
  const lower: BodyRegion = coarse.superiorLast ? "abdomen" : "head";
  const upper: BodyRegion = coarse.superiorLast ? "head" : "abdomen";
  const from = regions.includes(lower) ? 0 : regions.includes("chest") ? firstSlice : lastSlice + 1;
  const to = regions.includes(upper) ? last : regions.includes("chest") ? lastSlice : firstSlice - 1;
  if (from > to) return undefined;
  return { first: Math.max(0, from - marginSlices), last: Math.min(last, to + marginSlices) };
}

export function judgeIntendedUse(manifest: ModelManifest, volume: CtVolume, probed: ProbedVolume): IntendedUseVerdict {
  const use = manifest.intendedUse;
  const probe: AnatomyProbe = probed.probe;
  const header = volume.sliceHeaders[0] ?? {};
  const reasons: string[] = [];
  const notes: string[] = [];
  const forWhat = `${manifest.id} is for ${use.description}`;

  const shown = probe.regions.filter((r) => use.regions.includes(r));
  if (shown.length === 0) {
    const lungs = use.regions.includes("chest") && probe.lungs.volumeMl === 0 ? "no lungs in the volume (0 ml), " : "";
    reasons.push(`${lungs}the volume shows ${probe.regions.join("+") || "no body region"} ` +
      `(${Object.entries(probe.coverageMm).filter(([, mm]) => mm > 0).map(([r, mm]) => `${r} ${mm} mm`).join(", ") || "nothing"})`);
  }
  if (use.lungs && (shown.length > 0 || probe.lungs.volumeMl > 0)) {
    const { lungs } = probe;
    if (lungs.volumeMl < use.lungs.minVolumeMl) reasons.push(`lungs ${lungs.volumeMl} ml, below the ${use.lungs.minVolumeMl} ml required`);
    else if (use.lungs.bothSides && Math.min(lungs.leftMl, lungs.rightMl) < use.lungs.minVolumeMl / 4) {
      reasons.push(`one lung only (left ${lungs.leftMl} ml, right ${lungs.rightMl} ml)`);
    }
    if (lungs.volumeMl > 0 && use.lungs.apexToBase && !(lungs.apexInside && lungs.baseInside)) {
      reasons.push(`the lungs are not covered from apex to base (apex ${lungs.apexInside ? "inside" : "cut"}, base ${lungs.baseInside ? "inside" : "cut"})`);
    }
  }
  const thickness = number(header.SliceThickness) ?? volume.sliceSpacing;
  if (!inRange(thickness, use.sliceThicknessMm)) reasons.push(`slice thickness ${thickness} mm, not ${rangeText(use.sliceThicknessMm, "mm")}`);
  const spacing = Math.max(...volume.pixelSpacing);
  if (!inRange(spacing, use.pixelSpacingMm)) reasons.push(`pixel spacing ${spacing} mm, not ${rangeText(use.pixelSpacingMm, "mm")}`);
  const matrix = Math.max(volume.rows, volume.columns);
  if (!inRange(matrix, use.matrix) || !inRange(Math.min(volume.rows, volume.columns), use.matrix)) {
    reasons.push(`matrix ${volume.rows}x${volume.columns}, not ${rangeText(use.matrix, "px")}`);
  }
  const kvp = number(header.KVP);
  if (use.kvp && kvp !== undefined && !inRange(kvp, use.kvp)) reasons.push(`${kvp} kV, not ${rangeText(use.kvp, "kV")}`);

  if (use.contrast !== "any") {
    const measured = probe.contrast;
    const state = measured === "unknown" ? headerContrast(header) : measured;
    const how = measured === "unknown" ? `the header says ${state} (the image could not tell)` : `blood pool ${probe.bloodPoolHu} HU`;
    if (state !== use.contrast) reasons.push(`${state} (${how}), not ${use.contrast}`);
    else if (measured === "unknown") notes.push(`contrast: ${how}`);
  }
  if (use.lowDose) {
    const ctdi = number(header.CTDIvol);
    if (ctdi !== undefined) {
      if (ctdi > use.lowDose.ctdiVolMaxMgy) reasons.push(`CTDIvol ${ctdi} mGy: not a low dose (at most ${use.lowDose.ctdiVolMaxMgy} mGy)`);
    } else if (probe.noiseHu === undefined) {
      reasons.push("no CTDIvol in the header and the image noise could not be measured");
    } else if (!inRange(probe.noiseHu, use.lowDose.noiseHu)) {
      const sharp = use.lowDose.noiseHu.max !== undefined && probe.noiseHu > use.lowDose.noiseHu.max;
      reasons.push(`measured noise ${probe.noiseHu} HU (no CTDIvol in the header): ${sharp ? "a sharp kernel rather than a low dose" : "not a low dose"} ` +
        `(${rangeText(use.lowDose.noiseHu, "HU")})`);
    } else {
      notes.push(`low dose by measured noise ${probe.noiseHu} HU (no CTDIvol in the header)`);
    }
  }
  const noiseLevel = manifest.input.noiseLevel;
  if (noiseLevel) {
    // The noise is one of the model's inputs, not only a test of dose: without it the model cannot run.
    if (probe.noiseHu === undefined) {
      if (!reasons.some((r) => r.includes("noise could not be measured"))) {
        reasons.push("the image noise could not be measured (too few homogeneous fat or soft-tissue areas), and the model takes it as an input");
      }
    } else if (noiseLevel.trainedNoiseHu && !inRange(probe.noiseHu, noiseLevel.trainedNoiseHu)) {
      reasons.push(`measured noise ${probe.noiseHu} HU: outside the noise levels the model was trained on ` +
        `(${rangeText(noiseLevel.trainedNoiseHu, "HU")}), its noise input would be extrapolated`);
    }
  }
  if (reasons.length > 0) return { within: false, reasons: [...reasons, forWhat] };

  // Anatomy the model is not for is never processed beyond the slab's margin, whether or not there is enough of it to
  // count as a region of its own: a chest series' 30-40 mm of neck above the lung apices is no part of a chest model's
  // intended use, though it does not make the series a neck CT.
  const extra = (Object.entries(probe.coverageMm) as [BodyRegion, number][]).filter(([r, mm]) => mm > 0 && !use.regions.includes(r));
  const regionsSlab = extra.length > 0 ? regionSlab(probed, use.regions, Math.round(use.slabMarginMm / volume.sliceSpacing)) : undefined;
  const slab = regionsSlab && (regionsSlab.first > 0 || regionsSlab.last < probe.slices - 1) ? regionsSlab : undefined;
  if (slab) {
    notes.push(`slab: slices ${slab.first + 1}-${slab.last + 1} of ${probe.slices} (${use.regions.join("+")}; the volume also shows ` +
      `${extra.map(([r, mm]) => `${r} ${mm} mm`).join(", ")})`);
  }
  return { within: true, slab, notes };
}
