/**
 * Stage select: a stable series meets each pipeline's rules. Every series seen gets a recorded decision per pipeline
 * (queued, or skipped with the reason); a match becomes a job unless the same (series, pipeline, model version) job
 * exists, in the lane the site's rules give it (lane-rules.ts). Series that ct-enhance wrote itself are never
 * selected, or the node would loop on its own output.
 */
import type { Job } from "../jobs/job-records.js";
import type { Ledger } from "../jobs/ledger.js";
import { logger } from "../log.js";
import type { ModelRegistry } from "../models/registry.js";
import type { OrthancClient, SimplifiedTags } from "../orthanc/rest.js";
import { SOFTWARE_NAME } from "../version.js";
import { laneFor, type LaneRules } from "./lane-rules.js";
import type { PipelineDefinition } from "./pipelines.js";
import { evaluateRule } from "./rules.js";
import { SOURCE_EVENT } from "./job-stages.js";

const log = logger("select");

export interface SelectionOutcome {
  /** Jobs newly created. */
  queued: number;
  /** False when Orthanc no longer has the series. */
  exists: boolean;
}

/** Why this series is ct-enhance's own output, or undefined. */
export function ownOutputReason(seriesUid: string, tags: SimplifiedTags, ledger: Ledger): string | undefined {
  if (ledger.jobs.isOutputSeries(seriesUid)) return `written by ${SOFTWARE_NAME} (a job's output series)`;
  const equipment = tags.ContributingEquipmentSequence;
  if (Array.isArray(equipment) && equipment.some((item) => (item as SimplifiedTags)?.Manufacturer === SOFTWARE_NAME)) {
    return `written by ${SOFTWARE_NAME} (Contributing Equipment names it)`;
  }
  return undefined;
}

/**
 * Why a series that has its job already is not queued again. A series that grew (or lost instances) after its job
 * fetched it says so: the job's output covers what it had then, and only a person decides to run it again.
 */
function alreadyHandled(ledger: Ledger, job: Job, instancesNow: number): string {
  const handled = `already handled by job ${job.id} (state ${job.state})`;
  const fetched = ledger.jobs.events(job.id).filter((e) => e.kind === SOURCE_EVENT).at(-1);
  const then = fetched ? Number.parseInt(fetched.message, 10) : Number.NaN;
  if (!Number.isFinite(then) || then === instancesNow) return `${handled}; re-run it to process again`;
  const change = instancesNow > then ? `grew from ${then} to ${instancesNow} instances` : `went from ${then} to ${instancesNow} instances`;
  return `the series ${change} after job ${job.id} (state ${job.state}) fetched it, so that job's output does not cover ` +
    "the series as it is now; re-run it to process the whole series";
}

export async function selectSeries(
  orthancSeriesId: string,
  deps: { orthanc: OrthancClient; ledger: Ledger; models: ModelRegistry; pipelines: PipelineDefinition[]; laneRules?: LaneRules },
  only?: { pipeline: string },
): Promise<SelectionOutcome> {
  const { orthanc, ledger, models, pipelines } = deps;
  const series = await orthanc.series(orthancSeriesId);
  if (!series) return { queued: 0, exists: false };
  const seriesUid = series.MainDicomTags.SeriesInstanceUID ?? "";
  const study = await orthanc.study(series.ParentStudy);
  const studyUid = study?.MainDicomTags.StudyInstanceUID ?? "";
  const firstInstance = series.Instances[0];
  const tags = firstInstance ? await orthanc.instanceTags(firstInstance) : {};
  const record = (pipeline: string | null, decision: "queued" | "skipped", reason: string): void =>
    ledger.feed.recordDecision({ orthancSeriesId, seriesUid, pipeline, decision, reason });

  const own = ownOutputReason(seriesUid, tags, ledger);
  if (own) {
    record(null, "skipped", own);
    return { queued: 0, exists: true };
  }
  let queued = 0;
  for (const pipeline of pipelines) {
    if (only && pipeline.id !== only.pipeline) continue;
    if (!pipeline.enabled) {
      record(pipeline.id, "skipped", "pipeline disabled");
      continue;
    }
    const verdict = evaluateRule(pipeline.select, { instances: series.Instances.length, tags });
    if (!verdict.selected) {
      record(pipeline.id, "skipped", verdict.reason);
      continue;
    }
    const model = models.get(pipeline.model).manifest;
    const lane = laneFor(pipeline.lane, deps.laneRules, { instances: series.Instances.length, tags });
    const { job, created } = ledger.jobs.create({
      sourceOrthancId: orthancSeriesId,
      sourceSeriesUid: seriesUid,
      studyUid,
      pipeline: pipeline.id,
      modelId: model.id,
      modelVersion: model.version,
    }, { lane: lane.lane, laneReason: lane.reason });
    if (created) {
      queued += 1;
      record(pipeline.id, "queued", `matches the rules of pipeline ${pipeline.id}: job ${job.id}`);
      log.info("series queued", { series: orthancSeriesId, pipeline: pipeline.id, job: job.id, lane: lane.lane });
    } else {
      record(pipeline.id, "skipped", alreadyHandled(ledger, job, series.Instances.length));
    }
  }
  return { queued, exists: true };
}
