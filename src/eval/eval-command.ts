/**
 * `ct-enhance eval --reference <series> --candidate <series> [--hu-min -1024 --hu-max 3071] [--body-mask] [--json]`:
 * NMAE, PSNR and SSIM of a candidate series (e.g. a derived Syn-CTA) against a reference series (e.g. the real CTA),
 * each a folder of DICOM files or a series in the configured Orthanc. Definitions: src/eval/image-metrics.ts.
 */
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "../config.js";
import { OrthancClient } from "../orthanc/rest.js";
import { bodyMask, DEFAULT_BODY_THRESHOLD_HU } from "../measure/body-mask.js";
import { DEFAULT_HU_RANGE, imageMetrics, type HuRange, type ImageMetrics } from "./image-metrics.js";
import { loadSeries, type LoadedSeries } from "./load-series.js";
import { geometryDifference } from "./series-geometry.js";

export const EVAL_USAGE =
  "ct-enhance eval --reference <folder | Orthanc series ID | SeriesInstanceUID> --candidate <same> " +
  "[--hu-min -1024] [--hu-max 3071] [--body-mask] [--body-threshold -500] [--json] [--config FILE]";

const NUMERIC_OPTIONS = new Set(["--hu-min", "--hu-max", "--body-threshold"]);

/** `--hu-min -1024` as `--hu-min=-1024`: parseArgs would take "-1024" for an option. */
function joinNegativeNumbers(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i += 1) {
    const next = argv[i + 1];
    if (NUMERIC_OPTIONS.has(argv[i]!) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${argv[i]}=${next}`);
      i += 1;
    } else {
      out.push(argv[i]!);
    }
  }
  return out;
}

function numberOption(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value)) throw new ConfigError(`--${name} '${text}' is not a number`);
  return value;
}

export interface EvalReport {
  reference: SeriesSummary;
  candidate: SeriesSummary;
  huRange: HuRange;
  mask: { kind: "none" } | { kind: "body"; thresholdHu: number; voxels: number };
  nmae: number;
  maeHu: number;
  /** dB; the string "Infinity" when the series are identical within the HU range (JSON has no Infinity). */
  psnrDb: number | "Infinity";
  ssim: number;
  ssimSlices: number;
  voxels: number;
}

interface SeriesSummary {
  source: string;
  seriesInstanceUID: string;
  slices: number;
  rows: number;
  columns: number;
}

const summary = ({ volume, source }: LoadedSeries): SeriesSummary => ({
  source,
  seriesInstanceUID: volume.seriesInstanceUID,
  slices: volume.slices,
  rows: volume.rows,
  columns: volume.columns,
});

/** Loads both series, checks they share one geometry and measures; throws with the difference named otherwise. */
export async function evaluateSeries(options: {
  reference: string;
  candidate: string;
  range: HuRange;
  bodyMaskThresholdHu?: number;
  orthanc: () => OrthancClient;
}): Promise<EvalReport> {
  const load = async (role: string, series: string): Promise<LoadedSeries> => {
    try {
      return await loadSeries(series, options.orthanc);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(`the ${role} series (${series}) cannot be read: ${message}`, { cause: error });
    }
  };
  const reference = await load("reference", options.reference);
  const candidate = await load("candidate", options.candidate);
  const difference = geometryDifference(reference.volume, candidate.volume);
  if (difference) {
    throw new Error(`the series do not share one geometry, so they cannot be compared voxel by voxel: ${difference}`);
  }
  const { volume } = reference;
  const shape = { slices: volume.slices, rows: volume.rows, columns: volume.columns };
  const mask = options.bodyMaskThresholdHu === undefined ? undefined : bodyMask(volume.hu, shape, options.bodyMaskThresholdHu);
  const metrics: ImageMetrics = imageMetrics(volume.hu, candidate.volume.hu, shape, options.range, mask);
  return {
    reference: summary(reference),
    candidate: summary(candidate),
    huRange: options.range,
    mask: mask ? { kind: "body", thresholdHu: options.bodyMaskThresholdHu!, voxels: metrics.voxels } : { kind: "none" },
    nmae: metrics.nmae,
    maeHu: metrics.maeHu,
    psnrDb: Number.isFinite(metrics.psnrDb) ? metrics.psnrDb : "Infinity",
    ssim: metrics.ssim,
    ssimSlices: metrics.ssimSlices,
    voxels: metrics.voxels,
  };
}

export function formatReport(report: EvalReport): string {
  const series = (label: string, s: SeriesSummary) => `${label}: ${s.source} (${s.slices} slices, ${s.rows}x${s.columns})`;
  const { huMin, huMax } = report.huRange;
  const counted =
    report.mask.kind === "body"
      ? `body mask (reference > ${report.mask.thresholdHu} HU, largest component per slice, holes filled): ${report.voxels} voxels`
      : `all ${report.voxels} voxels`;
  const psnr = report.psnrDb === "Infinity" ? "Infinity (identical within the HU range)" : `${report.psnrDb.toFixed(2)} dB`;
  return [
    series("reference", report.reference),
    series("candidate", report.candidate),
    `HU range [${huMin}, ${huMax}] (both clipped; R = ${huMax - huMin} HU); ${counted}`,
    `NMAE ${report.nmae.toFixed(5)} (MAE ${report.maeHu.toFixed(2)} HU)`,
    `PSNR ${psnr}`,
    `SSIM ${report.ssim.toFixed(4)} (Gaussian 11x11, sigma 1.5; mean over ${report.ssimSlices} slices)`,
  ].join("\n");
}

/** The `eval` command; returns the exit code. */
export async function runEvalCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: joinNegativeNumbers(argv),
    options: {
      reference: { type: "string" },
      candidate: { type: "string" },
      "hu-min": { type: "string" },
      "hu-max": { type: "string" },
      "body-mask": { type: "boolean", default: false },
      "body-threshold": { type: "string" },
      json: { type: "boolean", default: false },
      config: { type: "string" },
    },
  });
  if (!values.reference || !values.candidate) {
    throw new ConfigError(`eval needs --reference and --candidate\nusage: ${EVAL_USAGE}`);
  }
  const range = {
    huMin: numberOption("hu-min", values["hu-min"], DEFAULT_HU_RANGE.huMin),
    huMax: numberOption("hu-max", values["hu-max"], DEFAULT_HU_RANGE.huMax),
  };
  if (range.huMax <= range.huMin) throw new ConfigError(`--hu-max ${range.huMax} must exceed --hu-min ${range.huMin}`);
  const threshold = numberOption("body-threshold", values["body-threshold"], DEFAULT_BODY_THRESHOLD_HU);
  const report = await evaluateSeries({
    reference: values.reference,
    candidate: values.candidate,
    range,
    ...(values["body-mask"] || values["body-threshold"] !== undefined ? { bodyMaskThresholdHu: threshold } : {}),
    orthanc: () => new OrthancClient(loadConfig(values.config).orthanc),
  });
  process.stdout.write(`${values.json ? JSON.stringify(report, null, 2) : formatReport(report)}\n`);
  return 0;
}
