/** /jobs: what the node did (jobs, their timelines and previews) and what an operator does with a job. */
import { existsSync } from "node:fs";
import { z } from "zod";
import { JobState } from "../../jobs/job-records.js";
import { LANES } from "../../jobs/lanes.js";
import { previewPath } from "../../pipeline/stages/preview.js";
import type { RouteDeps } from "../api-deps.js";
import { route, type Route } from "../route.js";
import { ErrorAnswer, JobIdParams, JobSchema, JobWithTimeline } from "../schemas.js";

const notFound = { description: "no such job", schema: ErrorAnswer };

/**
 * An operator's transition of one job: 404 without the job, 409 (with the job) when its state does not allow it,
 * else the job as it is now; the queue is woken when the job waits to run.
 */
function operatorAction({ ledger, notifyQueue }: RouteDeps, action: {
  path: string;
  summary: string;
  status: 200 | 202;
  act(id: number): boolean;
  refused: string;
}): Route {
  return route({
    method: "post",
    path: action.path,
    summary: action.summary,
    params: JobIdParams,
    answers: {
      [action.status]: { description: "done", schema: JobSchema },
      404: notFound,
      409: { description: "not allowed in the job's state", schema: ErrorAnswer },
    },
    handle({ params }, response) {
      const changed = action.act(params.id);
      const job = ledger.jobs.get(params.id);
      if (!job) {
        response.status(404).json({ error: `no job ${params.id}` });
        return;
      }
      if (!changed) {
        response.status(409).json({ error: `job ${job.id} is ${job.state}: ${action.refused}`, job });
        return;
      }
      if (job.state === JobState.Queued) notifyQueue?.();
      response.status(action.status).json(job);
    },
  });
}

export function jobRoutes(deps: RouteDeps): Route[] {
  const { config, ledger } = deps;
  return [
    route({
      method: "get",
      path: "/jobs",
      summary: "List jobs (oldest first)",
      query: z.object({
        state: z.enum(JobState).optional(),
        series: z.string().optional().describe("source SeriesInstanceUID"),
        orthancSeries: z.string().optional().describe("source Orthanc series ID"),
        pipeline: z.string().optional(),
        lane: z.enum(LANES).optional().describe("urgent, routine or off-peak"),
        limit: z.coerce.number().int().positive().optional().describe("only the last N"),
      }),
      answers: { 200: { description: "OK", schema: z.array(JobSchema) }, 400: { description: "bad filter", schema: ErrorAnswer } },
      handle({ query }, response) {
        const jobs = ledger.jobs.list({ ...(query.state ? { state: query.state } : {}), ...(query.series ? { sourceSeriesUid: query.series } : {}) })
          .filter((job) => (!query.orthancSeries || job.sourceOrthancId === query.orthancSeries) && (!query.pipeline || job.pipeline === query.pipeline)
            && (!query.lane || job.lane === query.lane));
        response.json(query.limit ? jobs.slice(-query.limit) : jobs);
      },
    }),
    route({
      method: "get",
      path: "/jobs/:id",
      summary: "One job with its event timeline",
      params: JobIdParams,
      answers: { 200: { description: "OK", schema: JobWithTimeline }, 404: notFound },
      handle({ params }, response) {
        const job = ledger.jobs.get(params.id);
        if (!job) {
          response.status(404).json({ error: `no job ${params.id}` });
          return;
        }
        const preview = existsSync(previewPath(config.dataDir, job.id)) ? `/jobs/${job.id}/preview.png` : null;
        response.json({ ...job, preview, events: ledger.jobs.events(job.id) });
      },
    }),
    route({
      method: "get",
      path: "/jobs/:id/preview.png",
      summary: "Before/after PNG of the middle slice (source left, output right)",
      params: JobIdParams,
      answers: { 200: { description: "PNG", contentType: "image/png" }, 404: { description: "no preview yet", schema: ErrorAnswer } },
      handle({ params }, response) {
        const file = previewPath(config.dataDir, params.id);
        if (!ledger.jobs.get(params.id) || !existsSync(file)) {
          response.status(404).json({ error: `no preview for job ${params.id} (it is written after the infer stage)` });
          return;
        }
        response.type("image/png").set("Cache-Control", "no-cache").sendFile(file);
      },
    }),
    operatorAction(deps, {
      path: "/jobs/:id/retry",
      summary: "Queue a failed, cancelled or retry-wait job again now (same run, attempts reset)",
      status: 202,
      act: (id) => ledger.jobs.retry(id, "retry requested through the API", true),
      refused: "only failed, cancelled or retry-wait jobs can be retried (re-run the series for a new run of a done job)",
    }),
    operatorAction(deps, {
      path: "/jobs/:id/cancel",
      summary: "Cancel a queued or retry-wait job",
      status: 200,
      act: (id) => ledger.jobs.cancel(id, "cancelled through the API"),
      refused: "only queued or retry-wait jobs can be cancelled",
    }),
    operatorAction(deps, {
      path: "/jobs/:id/urgent",
      summary: "Move a queued or retry-wait job to the urgent lane: it starts before routine and off-peak jobs",
      status: 200,
      act: (id) => ledger.jobs.lanes.markUrgent(id, "made urgent through the API"),
      refused: "only a queued or retry-wait job that is not urgent already can be made urgent",
    }),
  ];
}
