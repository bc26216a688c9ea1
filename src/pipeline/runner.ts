/**
 * The way one job travels, top to bottom: select (the pipeline and its model, as the job names them), plan (what the
 * model's output becomes: output-plan.ts), fetch the source series over WADO-RS into an HU volume, probe what it
 * shows and judge the model's intended use on it (skipped, with the reasons, when outside it; its slab only when the
 * volume covers more), then infer, check, write and store as the plan does it (rejected, storing nothing, when the
 * output fails its checks). A forced job goes past intended use and checks, and its output says so. Every step is
 * recorded in the ledger (stage, progress, provider, outcome); a failure becomes a retry or a final error with the
 * stage it happened in and its cause.
 */
import path from "node:path";
import { type Config, webhookSettings } from "../config.js";
import type { Job } from "../jobs/job-records.js";
import type { Ledger } from "../jobs/ledger.js";
import { logger } from "../log.js";
import type { InferenceService } from "../models/inference.js";
import type { ModelRegistry } from "../models/registry.js";
import type { OrthancClient } from "../orthanc/rest.js";
import type { StoredSeries } from "../notify/result-notification.js";
import { asStageError, OperationalError, Stage, StageError } from "../stage-error.js";
import { DCMTK_DECODABLE_TRANSFER_SYNTAXES, transferSyntaxName } from "../dicom/ct-slice.js";
import { volumeSlab } from "../dicom/ct-volume.js";
import { DicomwebError } from "../dicomweb/endpoint.js";
import { probedSlab, probeVolume } from "../measure/anatomy-probe.js";
import { judgeIntendedUse } from "./intended-use.js";
import { endJob, type JobResult, NO_RESULT } from "./job-notification.js";
import { JobStages, SOURCE_EVENT } from "./job-stages.js";
import { derivedSeriesPlan } from "./outputs/derived-series.js";
import { findingsPlan } from "./outputs/findings.js";
import { failedChecks, type OutputPlan, type PlanOutcome, type PlanTarget } from "./outputs/output-plan.js";
import type { PipelineDefinition } from "./pipelines.js";
import { fetchVolume } from "./stages/fetch-volume.js";
import { writeJobPreview } from "./stages/preview.js";
import { stageDeadline, StageTimeoutError, withinDeadline } from "./stage-deadline.js";
import { checkVolumeSize, matrixOf, volumeMiB } from "./stages/volume-limit.js";
import { seriesStateKey, type SourceVolumes } from "./stages/source-volumes.js";
import type { LaneRules } from "./lane-rules.js";
import type { CtVolume } from "../dicom/ct-volume.js";

const log = logger("runner");

export interface PipelineContext {
  config: Config;
  orthanc: OrthancClient;
  ledger: Ledger;
  models: ModelRegistry;
  inference: InferenceService;
  pipelines: PipelineDefinition[];
  /** The site's urgent rule (the pipelines file's `lanes`): which new jobs are urgent. */
  laneRules?: LaneRules;
  /** Volumes held between jobs (the job queue's): the last one for its series' next job, and the next job's, fetched ahead. */
  volumes?: SourceVolumes;
}

/** Runs the job to done, retry-wait or failed. Never throws: the outcome is in the ledger. */
export async function runJob(ctx: PipelineContext, queued: Job): Promise<Job> {
  const { ledger } = ctx;
  if (!ledger.jobs.start(queued.id)) return ledger.jobs.get(queued.id)!; // not waiting any more (cancelled, taken)
  const job = ledger.jobs.get(queued.id)!;
  const stages = new JobStages(ledger, job.id);
  const started = performance.now();
  log.info("job started", { job: job.id, pipeline: job.pipeline, series: job.sourceSeriesUid, attempt: job.attempts });
  try {
    const ending = await runStages(ctx, job, stages);
    stages.end();
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    finishAs(ctx, job, ending, seconds);
  } catch (thrown) {
    stages.end();
    const error = asStageError(stages.current, thrown);
    const canRetry = error.retryable && job.attempts < ctx.config.jobs.maxAttempts;
    const delayMs = ctx.config.jobs.retryDelaySeconds * 1000 * 2 ** (job.attempts - 1);
    const nextRetryAt = canRetry ? new Date(Date.now() + delayMs) : null;
    endJob(ledger, notifying(ctx), job.id,
      () => ledger.jobs.fail(job.id, { stage: error.stage, message: error.message, retryable: error.retryable }, nextRetryAt), NO_RESULT);
    log.warn(canRetry ? "job failed; will retry" : "job failed", {
      job: job.id,
      stage: error.stage,
      error: error.message,
      attempt: job.attempts,
      ...(nextRetryAt ? { nextRetryAt: nextRetryAt.toISOString() } : {}),
    });
  }
  return ledger.jobs.get(job.id)!;
}

async function runStages(ctx: PipelineContext, job: Job, stages: JobStages): Promise<JobEnding> {
  const { ledger, orthanc } = ctx;
  const plan = outputPlanFor(selectTarget(ctx, job));
  // Recorded before storing: the outputs' own change events must be recognised as ours.
  ledger.jobs.recordOutputSeries(job.id, plan.seriesUids);

  stages.enter(Stage.Fetch);
  const last = plan.completion(job.slicesTotal);
  if (last.instances > 0 && (await instanceCount(orthanc, last.seriesUid)) >= last.instances) {
    ledger.jobs.addEvent(job.id, "skipped-store", `series ${last.seriesUid} is already complete in Orthanc (earlier attempt)`);
    const outputs: StoredSeries[] = [];
    for (const series of plan.outputSeries) {
      const instances = await instanceCount(orthanc, series.seriesInstanceUID);
      if (instances > 0) outputs.push({ ...series, instances });
    }
    const findings = await storedFindings(ctx, job, plan);
    const found = findings ? ` (${findings.count} finding(s) in its report)` : "";
    return { outcome: "done", text: `output series ${plan.seriesUids[0]} was already stored by an earlier attempt${found}`, result: { outputs, findings } };
  }

  // What an attempt that was killed while it stored left (a part of the series) goes before this attempt runs: no
  // viewer shows half a series for the length of a fetch and an inference, and the output is never a mix of two
  // attempts' instances (Orthanc keeps the first copy of a SOPInstanceUID).
  await removePartialOutput(ctx, job, plan);
  const volume = await fetchSourceVolume(ctx, job);
  ledger.jobs.setProgress(job.id, 0, volume.slices);
  ledger.jobs.addEvent(job.id, "volume", `${volume.slices} slices ${volume.rows}x${volume.columns}, ` +
    `spacing ${volume.pixelSpacing.join("x")} x ${volume.sliceSpacing.toFixed(3)} mm`);
  for (const why of volume.leftOut ?? []) ledger.jobs.addEvent(job.id, "left-out", why);

  stages.enter(Stage.Probe);
  const probed = await probeVolume(volume);
  ledger.jobs.addEvent(job.id, "probe", probed.probe.summary);
  const model = ctx.models.get(job.modelId);
  const use = judgeIntendedUse(model.manifest, volume, probed);
  if (!use.within && !job.forced) return { outcome: "skipped", text: use.reasons.join("; "), result: NO_RESULT };
  if (!use.within) ledger.jobs.addEvent(job.id, "forced", `outside intended use, run on request: ${use.reasons.join("; ")}`);
  for (const note of use.within ? use.notes : []) ledger.jobs.addEvent(job.id, "intended-use", note);
  const slab = use.within && use.slab ? use.slab : undefined;
  const input = slab ? volumeSlab(volume, slab.first, slab.last) : volume;
  const inputProbed = slab ? probedSlab(probed, slab.first, slab.last) : probed;

  stages.enter(Stage.Infer);
  if (plan.overwritesInput) ctx.volumes?.forget(volume);
  ctx.volumes?.inferring(job, volume);
  let outcome: PlanOutcome;
  try {
    outcome = await plan.produce(input, {
      inference: ctx.inference,
      inferDeadline: stageDeadline(ctx.config, Stage.Infer, input.slices),
      endpoint: orthanc.dicomweb(),
      store: { ...ctx.config.store, deadline: stageDeadline(ctx.config, Stage.Store, input.slices) },
      spoolDir: spoolDirOf(ctx.config),
      probed: inputProbed,
      overridden: job.forced ? (use.within ? [] : use.reasons) : undefined,
      onProgress: (done, total, provider) => {
        stages.setProvider(provider);
        ledger.jobs.setProgress(job.id, done, total);
      },
      onInferenceDone: (summary) => {
        stages.setProvider(summary.provider);
        ledger.jobs.addEvent(job.id, "inferred", `${input.slices} slices on ${summary.provider} in ` +
          `${(summary.inferenceMs / 1000).toFixed(1)} s (batch ${summary.batchSize})`);
        stages.enter(Stage.Store);
      },
    });
  } catch (error) {
    await removePartialOutput(ctx, job, plan);
    throw error;
  }
  ledger.jobs.addEvent(job.id, "checks", outcome.checks.map((c) => `${c.passed ? "passed" : "FAILED"}: ${c.text}`).join("; "));
  if (outcome.preview) recordPreview(ctx, job, outcome.preview);
  if (outcome.rejected) return { outcome: "rejected", text: failedChecks(outcome.checks).join("; "), result: { ...NO_RESULT, checks: outcome.checks } };
  ledger.jobs.addEvent(job.id, "stored", `${outcome.stored} instances stored, the last ` +
    `${(outcome.storeTailMs / 1000).toFixed(1)} s after the model's last slice`);
  return { outcome: "done", text: outcome.summary, result: { outputs: outcome.outputs, findings: outcome.findings ?? null } };
}

/**
 * The source series as a volume: the one held for this exact series state when there is one (the job before fetched
 * the same series, or the queue fetched it ahead while the job before ran), else fetched now. A series deleted from
 * Orthanc after it was selected (or while it streams) fails the job for good, saying so, instead of a WADO-RS 404
 * retried or a volume of the instances that came before it went.
 */
async function fetchSourceVolume(ctx: PipelineContext, job: Job): Promise<CtVolume> {
  const { orthanc, ledger } = ctx;
  // The ledger has the source's Orthanc ID already: one request for its instance count, not a lookup by UID first.
  const source = await orthanc.series(job.sourceOrthancId);
  if (!source) throw new StageError(Stage.Fetch, `${goneText(job)}: it was deleted after it was selected`, false);
  ledger.jobs.addEvent(job.id, SOURCE_EVENT, `${source.Instances.length} instances in Orthanc when fetched`);
  // Refused before a byte is fetched or allocated when the volume would be over the configured limit.
  checkVolumeSize(await sourceSize(orthanc, source.Instances), ctx.config.limits.maxVolumeMiB);
  const key = seriesStateKey(job.sourceOrthancId, source);
  const held = ctx.volumes?.take(key, job);
  if (held) {
    ledger.jobs.addEvent(job.id, held.how === "reused" ? "volume-reused" : "volume-prefetched", held.how === "reused"
      ? `the volume job ${held.fetchedFor} assembled from the same ${source.Instances.length} instances: not fetched again`
      : `the volume fetched ahead while job ${held.fetchedFor} ran, the same ${source.Instances.length} instances`);
    return held.volume;
  }
  const volume = await assembleSource(ctx, job, source);
  ctx.volumes?.keep(key, volume, job);
  return volume;
}

/**
 * The next job's volume, fetched ahead by the job queue the same way (no timeline: the job records it when it takes
 * the volume), or why not: Orthanc lost the series, or the two volumes together would be over the volume limit (the
 * memory the limit budgets for one job is not doubled by a prefetch). A failure throws; the job then fetches itself.
 */
export async function prefetchSourceVolume(ctx: PipelineContext, job: Job, heldMiB: number):
  Promise<{ key: string; volume: CtVolume } | { notFetched: string }> {
  const source = await ctx.orthanc.series(job.sourceOrthancId);
  if (!source) return { notFetched: goneText(job) };
  const mib = volumeMiB(await sourceSize(ctx.orthanc, source.Instances));
  if (mib + heldMiB > ctx.config.limits.maxVolumeMiB) {
    return { notFetched: `its ${Math.ceil(mib)} MiB volume and the running job's ${Math.ceil(heldMiB)} MiB would be over ` +
      `limits.maxVolumeMiB (${ctx.config.limits.maxVolumeMiB} MiB)` };
  }
  return { key: seriesStateKey(job.sourceOrthancId, source), volume: await assembleSource(ctx, job, source) };
}

const goneText = (job: Job): string => `the source series ${job.sourceSeriesUid} (Orthanc ${job.sourceOrthancId}) is no longer in Orthanc`;

/** The series' size for the volume limit: Orthanc's instance count and the first instance's matrix. */
async function sourceSize(orthanc: OrthancClient, instances: readonly string[]) {
  const first = instances[0];
  const matrix = first ? matrixOf(await orthanc.instanceTags(first)) : undefined;
  return { instances: instances.length, rows: matrix?.rows ?? 0, columns: matrix?.columns ?? 0 };
}

/** The series over WADO-RS into a volume, within the fetch stage's deadline, its failure told for what it is. */
async function assembleSource(ctx: PipelineContext, job: Job, source: { Instances: string[] }): Promise<CtVolume> {
  const { orthanc } = ctx;
  const deadline = stageDeadline(ctx.config, Stage.Fetch, source.Instances.length);
  try {
    return await withinDeadline(deadline, `fetching ${source.Instances.length} instances over WADO-RS`,
      (signal) => fetchVolume(orthanc.dicomweb(), job.studyUid, job.sourceSeriesUid, source.Instances.length, signal));
  } catch (error) {
    if (error instanceof StageTimeoutError) throw error; // Orthanc stopped answering: asking it more would wait too
    const still = await orthanc.series(job.sourceOrthancId).catch(() => source); // Orthanc down: keep the first error
    if (!still) throw new StageError(Stage.Fetch, `${goneText(job)}: it was deleted while it was fetched`, false, { cause: error });
    throw (await untranscodable(orthanc, source.Instances[0], error)) ?? error;
  }
}

/**
 * When Orthanc failed (5xx) to send the series uncompressed and its instances are stored in a syntax its DCMTK cannot
 * decode (JPEG 2000 without a decoding plugin), the failure is that, for good: retrying would fail alike.
 */
async function untranscodable(orthanc: OrthancClient, instance: string | undefined, error: unknown): Promise<StageError | undefined> {
  const cause = error instanceof StageError ? error.cause : error;
  if (!(cause instanceof DicomwebError) || (cause.status ?? 0) < 500 || !instance) return undefined;
  const syntax = await orthanc.instanceTransferSyntax(instance).catch(() => undefined);
  if (!syntax || DCMTK_DECODABLE_TRANSFER_SYNTAXES.has(syntax)) return undefined;
  return new StageError(Stage.Fetch, `Orthanc could not send the series uncompressed (HTTP ${cause.status}): its instances are ` +
    `stored as ${syntax} (${transferSyntaxName(syntax) ?? "a compressed transfer syntax"}), which this Orthanc cannot decode; ` +
    "add a decoder to Orthanc (e.g. its GDCM plugin) or send the series uncompressed", false, { cause: error });
}

/** Where derived series wait for their checks, in the data folder (on disk, beside the ledger). */
export const spoolDirOf = (config: Config): string => path.join(config.dataDir, "spool");

/**
 * How a job that ran to its end ended: done, skipped (outside intended use) or rejected (its output failed checks),
 * and what it produced, for its result notification.
 */
type JobEnding = { outcome: "done" | "skipped" | "rejected"; text: string; result: JobResult };

/** Whether job ends are to be notified (a webhook is configured): their notifications are queued with the end. */
const notifying = (ctx: PipelineContext): boolean => webhookSettings(ctx.config) !== undefined;

/**
 * Records the ending (with its result notification, when one is configured), and for skipped and rejected jobs the
 * decision on the series, with the reasons and figures.
 */
function finishAs(ctx: PipelineContext, job: Job, ending: JobEnding, seconds: string): void {
  const { ledger } = ctx;
  endJob(ledger, notifying(ctx), job.id, () => {
    if (ending.outcome === "done") return ledger.jobs.finish(job.id, `${ending.text} in ${seconds} s`);
    if (ending.outcome === "skipped") return ledger.jobs.skip(job.id, ending.text);
    return ledger.jobs.reject(job.id, ending.text);
  }, ending.result);
  if (ending.outcome !== "done") {
    const model = ctx.models.get(job.modelId).manifest;
    const reason = ending.outcome === "skipped" ? `${ending.text} (measured; model ${model.id})` : `output of ${model.id} rejected: ${ending.text}`;
    ledger.feed.recordDecision({ orthancSeriesId: job.sourceOrthancId, seriesUid: job.sourceSeriesUid, pipeline: job.pipeline,
      decision: ending.outcome === "skipped" ? "skipped" : "rejected", reason });
  }
  log.info(`job ${ending.outcome}`, { job: job.id, seconds: Number(seconds) });
}

/** The pipeline and model the job names, still configured and still the job's model version. */
function selectTarget(ctx: PipelineContext, job: Job): PlanTarget {
  const pipelineOrdinal = ctx.pipelines.findIndex((p) => p.id === job.pipeline);
  const pipeline = ctx.pipelines[pipelineOrdinal];
  if (!pipeline) throw new StageError(Stage.Select, `pipeline '${job.pipeline}' is no longer configured`, false);
  if (!ctx.models.has(job.modelId)) {
    throw new StageError(Stage.Select, `model '${job.modelId}' is not in the models folder any more`, false);
  }
  const model = ctx.models.get(job.modelId);
  if (model.manifest.version !== job.modelVersion) {
    throw new StageError(Stage.Select,
      `model ${job.modelId} is now version ${model.manifest.version}, the job was for ${job.modelVersion}`, false);
  }
  return { job, pipeline, pipelineOrdinal, model };
}

/** What the model's output becomes, by what the manifest says it is. */
export function outputPlanFor(target: PlanTarget): OutputPlan {
  switch (target.model.manifest.output.meaning) {
    case "hu-image":
      return derivedSeriesPlan(target);
    case "probability-map":
      return findingsPlan(target);
  }
}

/**
 * Output the failed attempt left partly stored is deleted, so no viewer shows it and the retry stores it whole (with
 * the same UIDs). A series that cannot be deleted now is logged; the retry completes it.
 */
async function removePartialOutput(ctx: PipelineContext, job: Job, plan: OutputPlan): Promise<void> {
  for (const seriesUid of plan.seriesUids) {
    try {
      const id = await ctx.orthanc.seriesIdOf(seriesUid);
      if (!id) continue;
      await ctx.orthanc.deleteSeries(id);
      ctx.ledger.jobs.addEvent(job.id, "partial-output-removed", `the partly stored series ${seriesUid} was deleted`);
    } catch (error) {
      log.warn("partly stored series not deleted", { job: job.id, series: seriesUid, error: (error as Error).message });
    }
  }
}

/** The before/after PNG the API serves; a preview that cannot be written is noted, never fatal. */
function recordPreview(ctx: PipelineContext, job: Job, pair: NonNullable<PlanOutcome["preview"]>): void {
  try {
    writeJobPreview(ctx.config.dataDir, job.id, pair);
    ctx.ledger.jobs.addEvent(job.id, "preview", "before/after preview of the middle slice written");
  } catch (error) {
    log.warn("preview not written", { job: job.id, error: (error as Error).message });
  }
}

/**
 * What the earlier attempt's stored output tells of its findings (detection plans), for the job's notification,
 * within the fetch stage's deadline. Orthanc not answering (or too slowly) fails the attempt as any fetch does: it is
 * retried. Anything else (a report our reader cannot read, a series gone, a refusal) is noted on the timeline and
 * leaves the findings unknown (null): the output is whole in the PACS, so the job is still done.
 */
async function storedFindings(ctx: PipelineContext, job: Job, plan: OutputPlan): Promise<JobResult["findings"]> {
  const read = plan.storedFindings?.bind(plan);
  if (!read) return null;
  try {
    return (await withinDeadline(stageDeadline(ctx.config, Stage.Fetch, 2), "reading the stored report and segmentation back over WADO-RS",
      (signal) => read(ctx.orthanc.dicomweb(), job.studyUid, signal))) ?? null;
  } catch (error) {
    if (error instanceof OperationalError && error.retryable) throw error;
    const why = error instanceof Error ? error.message : String(error);
    ctx.ledger.jobs.addEvent(job.id, "findings-unread", `the stored output's findings could not be read back: ${why}`);
    return null;
  }
}

async function instanceCount(orthanc: OrthancClient, seriesUid: string): Promise<number> {
  const id = await orthanc.seriesIdOf(seriesUid);
  if (!id) return 0;
  return (await orthanc.series(id))?.Instances.length ?? 0;
}
