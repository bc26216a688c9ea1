/**
 * `ct-enhance eval --reference <series> --candidate <series> [options]` (eval-options.ts): NMAE, MAE, PSNR and SSIM
 * of a candidate series (e.g. a derived Syn-CTA) against a reference series (e.g. the real CTA), per volume and per
 * slice, optionally in HU regions of the reference; each series a folder of DICOM files or a series in the
 * configured Orthanc. Definitions: src/eval/image-metrics.ts; output: src/eval/eval-report.ts.
 */
import { writeFileSync } from "node:fs";
import { loadConfig } from "../config.js";
import { bodyMask } from "../measure/body-mask.js";
import { OrthancClient } from "../orthanc/rest.js";
import { buildReport, formatReport, perSliceCsv, type EvalReport, type SeriesSummary } from "./eval-report.js";
import { EVAL_HELP, EVAL_USAGE, parseEvalOptions, type EvalOptions } from "./eval-options.js";
import { imageMetrics, type SliceFigures } from "./image-metrics.js";
import { loadSeries, type LoadedSeries } from "./load-series.js";
import { geometryDifference } from "./series-geometry.js";

export { EVAL_USAGE };
export type { EvalReport };

const summary = ({ volume, source }: LoadedSeries): SeriesSummary => ({
  source,
  seriesInstanceUID: volume.seriesInstanceUID,
  slices: volume.slices,
  rows: volume.rows,
  columns: volume.columns,
});

export interface EvalOutcome {
  report: EvalReport;
  /** Every slice's figures, in position order, with where the reference slice is (for the CSV). */
  slices: SliceFigures[];
  positions: { instanceNumber: number | null; zMm: number }[];
}

type MeasureOptions = Omit<EvalOptions, "json" | "perSliceCsv" | "config"> & { orthanc: () => OrthancClient };

/** Loads both series, checks they share one geometry and measures; throws with the difference named otherwise. */
export async function evaluateSeries(options: MeasureOptions): Promise<EvalOutcome> {
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
  const threshold = options.bodyMaskThresholdHu;
  const metrics = imageMetrics(volume.hu, candidate.volume.hu, shape, {
    range: options.range,
    ssimWindow: options.ssimWindow,
    ...(threshold === undefined ? {} : { mask: bodyMask(volume.hu, shape, threshold) }),
    excludeBackground: options.excludeBackground,
    regions: options.regions,
  });
  const report = buildReport({
    reference: summary(reference),
    candidate: summary(candidate),
    range: options.range,
    ssimWindow: options.ssimWindow,
    ...(threshold === undefined ? {} : { bodyMaskThresholdHu: threshold }),
    excludeBackground: options.excludeBackground,
    metrics,
  });
  const positions = volume.imagePositionPatient.map((position, k) => {
    const instanceNumber = Number(volume.sliceHeaders[k]?.InstanceNumber);
    return { instanceNumber: Number.isFinite(instanceNumber) ? instanceNumber : null, zMm: position[2] };
  });
  return { report, slices: metrics.slices, positions };
}

/** The `eval` command; returns the exit code. */
export async function runEvalCommand(argv: string[]): Promise<number> {
  const options = parseEvalOptions(argv);
  if (options === "help") {
    process.stdout.write(`usage: ${EVAL_USAGE}\n${EVAL_HELP}\n`);
    return 0;
  }
  const { report, slices, positions } = await evaluateSeries({
    ...options,
    orthanc: () => new OrthancClient(loadConfig(options.config).orthanc),
  });
  if (options.perSliceCsv) writeFileSync(options.perSliceCsv, perSliceCsv(slices, positions));
  process.stdout.write(`${options.json ? JSON.stringify(report, null, 2) : formatReport(report)}\n`);
  return 0;
}
