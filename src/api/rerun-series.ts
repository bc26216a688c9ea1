/**
 * "Run again" for one series, as the API and the Orthanc Explorer panel ask for it: for each chosen pipeline, a job
 * that is queued or running is left as it is; one that ran (done, failed, cancelled, waiting for a retry) is
 * re-queued as a new run (new output UIDs); a series with no job gets one. Without force the pipeline's rules must
 * still select the series, and the model's intended use and output checks still apply; with force all three are
 * bypassed, and the output's DICOM says which were. With urgent, the jobs go to the urgent lane (a job still waiting
 * is moved there); otherwise a new job takes the lane the site's rules give it. ct-enhance's own output is never
 * processed.
 */
import { JobState, type Job } from "../jobs/job-records.js";
import type { Ledger } from "../jobs/ledger.js";
import type { ModelRegistry } from "../models/registry.js";
import type { OrthancClient } from "../orthanc/rest.js";
import { Lane } from "../jobs/lanes.js";
import { laneFor, type LaneRules } from "../pipeline/lane-rules.js";
import type { PipelineDefinition } from "../pipeline/pipelines.js";
import { evaluateRule } from "../pipeline/rules.js";
import { ownOutputReason } from "../pipeline/select-series.js";

const ORTHANC_ID = /^[0-9a-f]{8}(-[0-9a-f]{8}){4}$/;

export interface RerunDeps {
  orthanc: OrthancClient;
  ledger: Ledger;
  models: ModelRegistry;
  pipelines: PipelineDefinition[];
  laneRules?: LaneRules;
}

export type RerunOutcome = "queued" | "requeued" | "made-urgent" | "unchanged" | "skipped";

export interface RerunResult {
  series: string;
  seriesUid: string;
  jobs: { pipeline: string; outcome: RerunOutcome; reason: string; job: Job | null }[];
}

/** A request the caller got wrong, with the HTTP status to answer. */
export class RerunRequestError extends Error {
  constructor(readonly status: 400 | 404, message: string) {
    super(message);
  }
}

export async function rerunSeries(
  deps: RerunDeps,
  seriesRef: string,
  options: { pipeline?: string; force?: boolean; urgent?: boolean; requestedBy: string },
): Promise<RerunResult> {
  const { orthanc, ledger, models } = deps;
  if (options.pipeline && !deps.pipelines.some((p) => p.id === options.pipeline)) {
    throw new RerunRequestError(400, `no pipeline '${options.pipeline}' (known: ${deps.pipelines.map((p) => p.id).join(", ")})`);
  }
  const orthancId = ORTHANC_ID.test(seriesRef) ? seriesRef : await orthanc.seriesIdOf(seriesRef);
  const series = orthancId ? await orthanc.series(orthancId) : undefined;
  if (!orthancId || !series) throw new RerunRequestError(404, `Orthanc has no series '${seriesRef}' (give its Orthanc ID or SeriesInstanceUID)`);
  const seriesUid = series.MainDicomTags.SeriesInstanceUID ?? "";
  const firstInstance = series.Instances[0];
  const tags = firstInstance ? await orthanc.instanceTags(firstInstance) : {};
  const own = ownOutputReason(seriesUid, tags, ledger);
  if (own) throw new RerunRequestError(400, `series ${orthancId} is not processed: ${own}; run its source series again instead`);
  const studyUid = (await orthanc.study(series.ParentStudy))?.MainDicomTags.StudyInstanceUID ?? "";

  const chosen = deps.pipelines.filter((p) => (options.pipeline ? p.id === options.pipeline : p.enabled));
  const result: RerunResult = { series: orthancId, seriesUid, jobs: [] };
  for (const pipeline of chosen) {
    const model = models.get(pipeline.model).manifest;
    const existing = ledger.jobs.find(seriesUid, pipeline.id, model.version);
    if (existing?.state === JobState.Queued && options.urgent &&
      ledger.jobs.lanes.markUrgent(existing.id, `made urgent by ${options.requestedBy}`)) {
      result.jobs.push({ pipeline: pipeline.id, outcome: "made-urgent", reason: `job ${existing.id} waits in the urgent lane now`, job: ledger.jobs.get(existing.id)! });
      continue;
    }
    if (existing?.state === JobState.Queued || existing?.state === JobState.Running) {
      result.jobs.push({ pipeline: pipeline.id, outcome: "unchanged", reason: `job ${existing.id} is ${existing.state} already`, job: existing });
      continue;
    }
    if (!options.force) {
      const verdict = evaluateRule(pipeline.select, { instances: series.Instances.length, tags });
      if (!verdict.selected) {
        result.jobs.push({ pipeline: pipeline.id, outcome: "skipped", reason: `${verdict.reason}; use force to run it anyway`, job: existing ?? null });
        continue;
      }
    }
    const forced = options.force === true;
    const why = `re-run requested by ${options.requestedBy}${forced ? " (force: rules, intended use and output checks bypassed)" : ""}`;
    const lane = options.urgent
      ? { lane: Lane.Urgent, reason: `urgent, asked by ${options.requestedBy}` }
      : laneFor(pipeline.lane, deps.laneRules, { instances: series.Instances.length, tags });
    if (existing) ledger.jobs.requeue(existing.id, why, forced, options.urgent ? Lane.Urgent : undefined);
    const job = existing
      ? ledger.jobs.get(existing.id)!
      : ledger.jobs.create({ sourceOrthancId: orthancId, sourceSeriesUid: seriesUid, studyUid, pipeline: pipeline.id, modelId: model.id, modelVersion: model.version },
        { forced, lane: lane.lane, laneReason: lane.reason }).job;
    ledger.feed.recordDecision({ orthancSeriesId: orthancId, seriesUid, pipeline: pipeline.id, decision: "queued", reason: `${why}: job ${job.id} run ${job.run}` });
    result.jobs.push({ pipeline: pipeline.id, outcome: existing ? "requeued" : "queued", reason: why, job });
  }
  return result;
}
