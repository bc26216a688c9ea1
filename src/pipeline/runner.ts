/**
 * The way one job travels, top to bottom: fetch the source series over WADO-RS into an HU volume, run the model in
 * the inference worker, write the derived CT series and store it over STOW-RS while the model still runs (or, for
 * detection, turn the whole probability map into findings, SR and SEG). Every step is recorded in the
 * ledger (stage, progress, provider, outcome); a failure becomes a retry or a final error with its stage and cause.
 */
import type { Config } from "../config.js";
import type { Job, Ledger } from "../jobs/ledger.js";
import { logger } from "../log.js";
import type { InferenceService, InferenceSummary } from "../models/inference.js";
import type { ModelRegistry } from "../models/registry.js";
import { OrthancError, type OrthancClient } from "../orthanc/rest.js";
import { derivedSeriesIdentity, derivedSeriesNumber, derivedSeriesUid } from "./derived-identity.js";
import type { PipelineDefinition } from "./pipelines.js";
import { asStageError, Stage, StageError } from "./stage-error.js";
import { fetchVolume } from "./stages/fetch-volume.js";
import { inferVolume } from "./stages/infer.js";
import { type PreviewPair, writeJobPreview } from "./stages/preview.js";
import { type DerivedCtRun, deriveCtSeries } from "./stages/derive-ct-series.js";
import { findingsSeriesUids, storeFindings } from "./stages/store-findings.js";

const log = logger("runner");

export interface PipelineContext {
  config: Config;
  orthanc: OrthancClient;
  ledger: Ledger;
  models: ModelRegistry;
  inference: InferenceService;
  pipelines: PipelineDefinition[];
}

/** Runs the job to done, retry-wait or failed. Never throws: the outcome is in the ledger. */
export async function runJob(ctx: PipelineContext, queued: Job): Promise<Job> {
  const { ledger } = ctx;
  ledger.startJob(queued.id);
  const job = ledger.job(queued.id)!;
  const started = performance.now();
  log.info("job started", { job: job.id, pipeline: job.pipeline, series: job.sourceSeriesUid, attempt: job.attempts });
  try {
    const { outputUid, summary } = await runStages(ctx, job);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    ledger.finishJob(job.id, `${summary} in ${seconds} s`);
    log.info("job done", { job: job.id, outputSeries: outputUid, seconds: Number(seconds) });
  } catch (thrown) {
    const error = thrown instanceof OrthancError
      ? new StageError(Stage.Fetch, thrown.message, thrown.retryable, { cause: thrown })
      : asStageError(Stage.Fetch, thrown, true);
    const canRetry = error.retryable && job.attempts < ctx.config.jobs.maxAttempts;
    const delayMs = ctx.config.jobs.retryDelaySeconds * 1000 * 2 ** (job.attempts - 1);
    const nextRetryAt = canRetry ? new Date(Date.now() + delayMs) : null;
    ledger.failJob(job.id, { stage: error.stage, message: error.message, retryable: error.retryable }, nextRetryAt);
    log.warn(canRetry ? "job failed; will retry" : "job failed", {
      job: job.id,
      stage: error.stage,
      error: error.message,
      attempt: job.attempts,
      ...(nextRetryAt ? { nextRetryAt: nextRetryAt.toISOString() } : {}),
    });
  }
  return ledger.job(job.id)!;
}

async function runStages(ctx: PipelineContext, job: Job): Promise<{ outputUid: string; summary: string }> {
  const { ledger, orthanc } = ctx;
  const ordinal = ctx.pipelines.findIndex((p) => p.id === job.pipeline);
  const pipeline = ctx.pipelines[ordinal];
  if (!pipeline) throw new StageError(Stage.Select, `pipeline '${job.pipeline}' is no longer configured`, false);
  if (!ctx.models.has(job.modelId)) {
    throw new StageError(Stage.Select, `model '${job.modelId}' is not in the models folder any more`, false);
  }
  const model = ctx.models.get(job.modelId);
  if (model.manifest.version !== job.modelVersion) {
    throw new StageError(Stage.Select,
      `model ${job.modelId} is now version ${model.manifest.version}, the job was for ${job.modelVersion}`, false);
  }
  const detection = model.manifest.task === "detection";
  const namespace = [job.sourceSeriesUid, job.pipeline, job.modelVersion, String(job.run)];
  const findingsUids = findingsSeriesUids(namespace);
  const outputUid = detection ? findingsUids.sr : derivedSeriesUid(job);
  // Recorded before storing: the outputs' own change events must be recognised as ours.
  ledger.recordOutputSeries(job.id, outputUid);
  if (detection) ledger.recordOutputSeries(job.id, findingsUids.seg, { primary: false });
  const expected = detection ? 1 : job.slicesTotal; // the SR is stored last
  if (expected > 0 && (await instanceCount(orthanc, outputUid)) >= expected) {
    ledger.addEvent(job.id, "skipped-store", `series ${outputUid} is already complete in Orthanc (earlier attempt)`);
    return { outputUid, summary: `output series ${outputUid} was already stored by an earlier attempt` };
  }

  ledger.setStage(job.id, Stage.Fetch);
  const endpoint = orthanc.dicomweb();
  // The ledger has the source's Orthanc ID already: one request for its instance count, not a lookup by UID first.
  const sourceInstances = (await orthanc.series(job.sourceOrthancId))?.Instances.length;
  const volume = await fetchVolume(endpoint, job.studyUid, job.sourceSeriesUid, sourceInstances);
  ledger.setProgress(job.id, 0, volume.slices);
  ledger.addEvent(job.id, "volume", `${volume.slices} slices ${volume.rows}x${volume.columns}, ` +
    `spacing ${volume.pixelSpacing.join("x")} x ${volume.sliceSpacing.toFixed(3)} mm`);

  ledger.setStage(job.id, Stage.Infer);
  let reportedProvider = "";
  const onProgress = (done: number, total: number, provider: string): void => {
    if (provider !== reportedProvider) ledger.setProvider(job.id, (reportedProvider = provider));
    ledger.setProgress(job.id, done, total);
  };
  const inferred = (summary: InferenceSummary): void => {
    ledger.setProvider(job.id, summary.provider);
    ledger.addEvent(job.id, "inferred", `${volume.slices} slices on ${summary.provider} in ` +
      `${(summary.inferenceMs / 1000).toFixed(1)} s (batch ${summary.batchSize})`);
    ledger.setStage(job.id, Stage.Store);
  };
  const sourceSeriesNumber = Number(volume.sliceHeaders[0]?.SeriesNumber);
  const seriesNumber = Number.isFinite(sourceSeriesNumber) ? sourceSeriesNumber : undefined;

  if (detection) {
    // The probability map is read as a whole (connected findings): written over the input, one volume in memory.
    const result = await inferVolume(ctx.inference, model, volume, onProgress, { inPlace: true });
    inferred(result);
    const stored = await storeFindings(endpoint, volume, result.output, model.manifest, {
      namespace,
      seriesNumber: derivedSeriesNumber(seriesNumber, ordinal),
    });
    return {
      outputUid,
      summary: `${stored.findings.length} finding(s); SR series ${stored.srSeriesUid}` +
        (stored.segSeriesUid ? `, SEG series ${stored.segSeriesUid}` : ""),
    };
  }

  const identity = derivedSeriesIdentity(job, pipeline, ordinal, model.manifest, seriesNumber);
  let run: DerivedCtRun;
  try {
    run = await deriveCtSeries(ctx.inference, model, volume, endpoint, identity, ctx.config.store, {
      onProgress,
      onInferenceDone: inferred,
    });
  } catch (error) {
    await removePartialOutput(ctx, job, outputUid);
    throw error;
  }
  ledger.addEvent(job.id, "stored", `${run.stored} instances stored, the last ` +
    `${((run.storeDoneMs - run.inferenceDoneMs) / 1000).toFixed(1)} s after the model's last slice`);
  if (run.preview) recordPreview(ctx, job, run.preview);
  return { outputUid, summary: `derived series ${outputUid} stored` };
}

/**
 * A derived series the failed attempt left half stored is deleted, so no viewer shows it and the retry stores it
 * whole (with the same UIDs). A series that cannot be deleted now is logged; the retry completes it.
 */
async function removePartialOutput(ctx: PipelineContext, job: Job, seriesUid: string): Promise<void> {
  try {
    const id = await ctx.orthanc.seriesIdOf(seriesUid);
    if (!id) return;
    await ctx.orthanc.deleteSeries(id);
    ctx.ledger.addEvent(job.id, "partial-output-removed", `the partly stored series ${seriesUid} was deleted`);
  } catch (error) {
    log.warn("partly stored series not deleted", { job: job.id, series: seriesUid, error: (error as Error).message });
  }
}

/** The before/after PNG the API serves; a preview that cannot be written is noted, never fatal. */
function recordPreview(ctx: PipelineContext, job: Job, pair: PreviewPair): void {
  try {
    writeJobPreview(ctx.config.dataDir, job.id, pair);
    ctx.ledger.addEvent(job.id, "preview", "before/after preview of the middle slice written");
  } catch (error) {
    log.warn("preview not written", { job: job.id, error: (error as Error).message });
  }
}

async function instanceCount(orthanc: OrthancClient, seriesUid: string): Promise<number> {
  const id = await orthanc.seriesIdOf(seriesUid);
  if (!id) return 0;
  return (await orthanc.series(id))?.Instances.length ?? 0;
}

