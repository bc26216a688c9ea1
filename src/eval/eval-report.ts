/**
 * What `eval` reports: the JSON object (--json), the text a person reads, and the per-slice CSV (--per-slice-csv).
 * JSON has no Infinity: a PSNR of identical voxels is the string "Infinity", an open end of a region null.
 */
import type { ErrorFigures, HuRange, ImageMetrics, SliceFigures } from "./image-metrics.js";
import { describeSsimWindow, type SsimWindow } from "./ssim.js";

export interface SeriesSummary {
  source: string;
  seriesInstanceUID: string;
  slices: number;
  rows: number;
  columns: number;
}

type Psnr = number | "Infinity";

interface ReportedErrors {
  voxels: number;
  nmae: number | null;
  maeHu: number | null;
  psnrDb: Psnr | null;
  meanDifferenceHu: number | null;
}

export interface EvalReport {
  reference: SeriesSummary;
  candidate: SeriesSummary;
  huRange: HuRange;
  ssimWindow: SsimWindow;
  /** Which voxels count for NMAE, MAE and PSNR (the body mask for SSIM too). */
  counted: { bodyMask: { thresholdHu: number } | null; excludeBackground: boolean };
  /** Every counted voxel pooled; SSIM over every counted pixel of every slice's map. */
  perVolume: ReportedErrors & { ssim: number; ssimPixels: number };
  /** Each slice's figures, then the mean over the slices that have counted voxels (SSIM: pixels). */
  perSlice: { slices: number; nmae: number; maeHu: number; psnrDb: Psnr; identicalSlices: number; ssim: number; ssimSlices: number };
  /** Counted voxels whose reference HU is in [loHu, hiHu); null: no bound. */
  regions: (ReportedErrors & { name: string; loHu: number | null; hiHu: number | null })[];
}

const psnrValue = (psnr: number): Psnr => (Number.isFinite(psnr) ? psnr : "Infinity");

function reportedErrors(figures: ErrorFigures): ReportedErrors {
  return {
    voxels: figures.voxels,
    nmae: figures.nmae,
    maeHu: figures.maeHu,
    psnrDb: figures.psnrDb === null ? null : psnrValue(figures.psnrDb),
    meanDifferenceHu: figures.meanDifferenceHu,
  };
}

export function buildReport(options: {
  reference: SeriesSummary;
  candidate: SeriesSummary;
  range: HuRange;
  ssimWindow: SsimWindow;
  bodyMaskThresholdHu?: number;
  excludeBackground: boolean;
  metrics: ImageMetrics;
}): EvalReport {
  const { metrics } = options;
  const finite = (value: number): number | null => (Number.isFinite(value) ? value : null);
  return {
    reference: options.reference,
    candidate: options.candidate,
    huRange: options.range,
    ssimWindow: options.ssimWindow,
    counted: {
      bodyMask: options.bodyMaskThresholdHu === undefined ? null : { thresholdHu: options.bodyMaskThresholdHu },
      excludeBackground: options.excludeBackground,
    },
    perVolume: { ...reportedErrors(metrics.perVolume), ssim: metrics.perVolume.ssim, ssimPixels: metrics.perVolume.ssimPixels },
    perSlice: { ...metrics.perSlice, psnrDb: psnrValue(metrics.perSlice.psnrDb) },
    regions: metrics.regions.map((region) => ({
      name: region.name,
      loHu: finite(region.loHu),
      hiHu: finite(region.hiHu),
      ...reportedErrors(region),
    })),
  };
}

const psnrText = (psnr: Psnr | null): string =>
  psnr === null ? "-" : psnr === "Infinity" ? "Infinity (identical within the HU range)" : `${psnr.toFixed(2)} dB`;
const signed = (hu: number): string => `${hu >= 0 ? "+" : ""}${hu.toFixed(2)} HU`;

function errorsText(e: ReportedErrors): string {
  if (e.voxels === 0) return "no voxels";
  return `NMAE ${e.nmae!.toFixed(5)} (MAE ${e.maeHu!.toFixed(2)} HU), PSNR ${psnrText(e.psnrDb)}, mean difference ${signed(e.meanDifferenceHu!)}`;
}

function regionBounds(lo: number | null, hi: number | null): string {
  if (lo === null && hi === null) return "any HU";
  if (lo === null) return `HU < ${hi}`;
  if (hi === null) return `HU >= ${lo}`;
  return `${lo} <= HU < ${hi}`;
}

export function formatReport(report: EvalReport): string {
  const series = (label: string, s: SeriesSummary) => `${label}: ${s.source} (${s.slices} slices, ${s.rows}x${s.columns})`;
  const { huMin, huMax } = report.huRange;
  const { bodyMask, excludeBackground } = report.counted;
  const counted = [
    bodyMask ? `the body (reference > ${bodyMask.thresholdHu} HU, largest component per slice, holes filled)` : "all voxels",
    ...(excludeBackground ? [`without the background (reference <= ${huMin} HU, as RegGAN)`] : []),
  ].join(" ");
  const { perVolume: v, perSlice: s } = report;
  const identical = s.identicalSlices > 0 ? `; ${s.identicalSlices} identical slice(s) left out of the PSNR mean` : "";
  const lines = [
    series("reference", report.reference),
    series("candidate", report.candidate),
    `HU range [${huMin}, ${huMax}] (both clipped; R = ${huMax - huMin} HU); counted: ${counted}: ${v.voxels} voxels`,
    `SSIM: skimage, ${describeSsimWindow(report.ssimWindow)}, on the clipped slices scaled to [-1, 1] (data range 2)`,
    `per volume (counted voxels pooled): ${errorsText(v)}, SSIM ${v.ssim.toFixed(4)}`,
    `per slice (mean over ${s.slices} slices${identical}): NMAE ${s.nmae.toFixed(5)} (MAE ${s.maeHu.toFixed(2)} HU), ` +
      `PSNR ${psnrText(s.psnrDb)}, SSIM ${s.ssim.toFixed(4)} (${s.ssimSlices} slices)`,
  ];
  for (const region of report.regions) {
    lines.push(`region ${region.name} (reference ${regionBounds(region.loHu, region.hiHu)}): ${region.voxels} voxels, ${errorsText(region)}`);
  }
  return lines.join("\n");
}

/** One CSV row per slice, in position order: where it is, and its figures (empty where it has no counted voxels). */
export function perSliceCsv(slices: SliceFigures[], positions: { instanceNumber: number | null; zMm: number }[]): string {
  const cell = (value: number | null): string => (value === null ? "" : Number.isFinite(value) ? String(value) : "inf");
  const rows = slices.map((s) => {
    const at = positions[s.slice]!;
    return [
      s.slice + 1,
      at.instanceNumber ?? "",
      at.zMm,
      s.voxels,
      cell(s.nmae),
      cell(s.maeHu),
      cell(s.psnrDb),
      cell(s.meanDifferenceHu),
      cell(s.ssim),
    ].join(",");
  });
  return ["slice,instance_number,z_mm,voxels,nmae,mae_hu,psnr_db,mean_difference_hu,ssim", ...rows].join("\n") + "\n";
}
