/**
 * ct-enhance's HTTP API: probes (/health, /ready), what the node did (jobs with their timelines and previews,
 * per-series decisions, the feed), what an operator does (re-run a series, retry or cancel a job, run a schedule
 * now), what it can do (models, pipelines, schedules), /metrics for Prometheus and /openapi.json describing it all.
 * Everything but /health, /ready and /openapi.json needs the bearer token (see auth.ts).
 */
import express, { type NextFunction, type Request, type Response } from "express";
import { existsSync } from "node:fs";
import type { Server } from "node:http";
import type { Config } from "../config.js";
import type { EventLoopDelay } from "../event-loop.js";
import { JobState, type Ledger } from "../jobs/ledger.js";
import type { ScheduleStatus, ScheduleRun } from "../jobs/schedules.js";
import type { ModelRegistry } from "../models/registry.js";
import { OrthancReachability } from "../orthanc/reachability.js";
import type { OrthancClient } from "../orthanc/rest.js";
import type { PipelineDefinition } from "../pipeline/pipelines.js";
import { previewPath } from "../pipeline/stages/preview.js";
import { requireToken } from "./auth.js";
import { renderMetrics } from "./metrics.js";
import { openApiDocument } from "./openapi.js";
import { RerunRequestError, rerunSeries } from "./rerun-series.js";

export interface ApiDeps {
  config: Config;
  ledger: Ledger;
  orthanc: OrthancClient;
  models?: ModelRegistry;
  pipelines?: PipelineDefinition[];
  /** The schedules (reconcile, retry, retention), when the service runs them. */
  schedules?: {
    list(): ScheduleStatus[];
    has(name: string): boolean;
    run(name: never): Promise<ScheduleRun>;
  };
  /** Wakes the job queue after the API queued work. */
  notifyQueue?: () => void;
  /** The job running now, if any. */
  runningJobId?: () => number | undefined;
  /** Readiness beyond Orthanc being reachable (models warmed, feed following). */
  ready?: () => boolean;
  /** This process's own event-loop delay, reported by /health and /metrics. */
  eventLoop?: EventLoopDelay;
}

const asyncRoute = (handler: (request: Request, response: Response) => Promise<void>) =>
  (request: Request, response: Response, next: NextFunction): void => void handler(request, response).catch(next);

const jobId = (request: Request): number => Number(request.params.id);
const round1 = (value: number): number => Math.round(value * 10) / 10;

export function createApi(deps: ApiDeps): express.Express {
  const { config, ledger, orthanc } = deps;
  const app = express();
  app.disable("x-powered-by");
  app.use(express.json({ limit: "64kb" }));

  // Liveness answers from memory (Orthanc as last checked, at most ~5 s ago); readiness asks Orthanc now.
  const reachability = new OrthancReachability(orthanc);
  app.get("/health", async (_request, response) => {
    const status = await reachability.status();
    const { checkedAt, ...rest } = status;
    const orthancStatus = { ...rest, checkedAt: checkedAt.toISOString() };
    const eventLoop = deps.eventLoop
      ? { eventLoop: { delayMaxMsLastSecond: round1(deps.eventLoop.lastSecondMaxMs()), delayMaxMsLastMinute: round1(deps.eventLoop.lastMinuteMaxMs()) } }
      : {};
    if (status.reachable) response.json({ status: "ok", orthanc: orthancStatus, ...eventLoop });
    else response.status(503).json({ status: "unavailable", orthanc: orthancStatus, ...eventLoop });
  });

  app.get("/ready", async (_request, response) => {
    const started = deps.ready?.() ?? true;
    const orthancReachable = (await reachability.check()).reachable;
    const ready = started && orthancReachable;
    response.status(ready ? 200 : 503).json({ ready, checks: { started, orthancReachable } });
  });

  app.get("/openapi.json", (_request, response) => {
    response.json(openApiDocument());
  });

  app.use(requireToken(config.api.token));

  app.get("/metrics", (_request, response) => {
    response.type("text/plain; version=0.0.4; charset=utf-8").send(renderMetrics({
      ledger,
      ...(deps.schedules ? { schedules: () => deps.schedules!.list() } : {}),
      jobRunning: () => deps.runningJobId?.() !== undefined,
      ...(deps.eventLoop ? { eventLoopDelayMaxMs: () => deps.eventLoop!.lastMinuteMaxMs() } : {}),
    }));
  });

  // --- jobs --------------------------------------------------------------------------------------------------------

  app.get("/jobs", (request, response) => {
    const query = (name: string): string | undefined => (typeof request.query[name] === "string" ? request.query[name] : undefined);
    const state = query("state");
    if (state && !Object.values(JobState).includes(state as JobState)) {
      response.status(400).json({ error: `state must be one of ${Object.values(JobState).join(", ")}` });
      return;
    }
    const series = query("series");
    const orthancSeries = query("orthancSeries");
    const pipeline = query("pipeline");
    const limit = query("limit") ? Number(query("limit")) : undefined;
    if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) {
      response.status(400).json({ error: "limit must be a positive integer" });
      return;
    }
    let jobs = ledger.jobs({ ...(state ? { state: state as JobState } : {}), ...(series ? { sourceSeriesUid: series } : {}) })
      .filter((job) => (!orthancSeries || job.sourceOrthancId === orthancSeries) && (!pipeline || job.pipeline === pipeline));
    if (limit) jobs = jobs.slice(-limit);
    response.json(jobs);
  });

  app.get("/jobs/:id", (request, response) => {
    const job = ledger.job(jobId(request));
    if (!job) {
      response.status(404).json({ error: `no job ${request.params.id}` });
      return;
    }
    const preview = existsSync(previewPath(config.dataDir, job.id)) ? `/jobs/${job.id}/preview.png` : null;
    response.json({ ...job, preview, events: ledger.events(job.id) });
  });

  app.get("/jobs/:id/preview.png", (request, response) => {
    const file = previewPath(config.dataDir, jobId(request));
    if (!ledger.job(jobId(request)) || !existsSync(file)) {
      response.status(404).json({ error: `no preview for job ${request.params.id} (it is written after the infer stage)` });
      return;
    }
    response.type("image/png").set("Cache-Control", "no-cache").sendFile(file);
  });

  app.post("/jobs/:id/retry", (request, response) => {
    const { job, queued } = ledger.retryJob(jobId(request), "retry requested through the API", true);
    if (!job) {
      response.status(404).json({ error: `no job ${request.params.id}` });
      return;
    }
    if (!queued) {
      response.status(409).json({ error: `job ${job.id} is ${job.state}: only failed, cancelled or retry-wait jobs can be retried ` +
        "(re-run the series for a new run of a done job)", job });
      return;
    }
    deps.notifyQueue?.();
    response.status(202).json(job);
  });

  app.post("/jobs/:id/cancel", (request, response) => {
    const { job, cancelled } = ledger.cancelJob(jobId(request), "cancelled through the API");
    if (!job) {
      response.status(404).json({ error: `no job ${request.params.id}` });
      return;
    }
    if (!cancelled) {
      response.status(409).json({ error: `job ${job.id} is ${job.state}: only queued or retry-wait jobs can be cancelled`, job });
      return;
    }
    response.json(job);
  });

  // --- series ------------------------------------------------------------------------------------------------------

  app.post("/series/:series/rerun", asyncRoute(async (request, response) => {
    if (!deps.models || !deps.pipelines) {
      response.status(503).json({ error: "re-run is only available while the service runs (ct-enhance serve)" });
      return;
    }
    const body = (request.body ?? {}) as { pipeline?: unknown; force?: unknown; requestedBy?: unknown };
    if (body.pipeline !== undefined && typeof body.pipeline !== "string") {
      response.status(400).json({ error: "pipeline must be a pipeline id (string)" });
      return;
    }
    try {
      const result = await rerunSeries({ orthanc, ledger, models: deps.models, pipelines: deps.pipelines }, String(request.params.series), {
        ...(body.pipeline ? { pipeline: body.pipeline } : {}),
        force: body.force === true,
        requestedBy: typeof body.requestedBy === "string" ? body.requestedBy.slice(0, 60) : "the API",
      });
      const queued = result.jobs.some((j) => j.outcome === "queued" || j.outcome === "requeued");
      if (queued) deps.notifyQueue?.();
      response.status(queued ? 202 : 409).json(result);
    } catch (error) {
      if (error instanceof RerunRequestError) {
        response.status(error.status).json({ error: error.message });
        return;
      }
      throw error;
    }
  }));

  app.get("/decisions", (request, response) => {
    const orthancSeriesId = typeof request.query.series === "string" ? request.query.series : undefined;
    const seriesUid = typeof request.query.seriesUid === "string" ? request.query.seriesUid : undefined;
    response.json(ledger.decisions({
      ...(orthancSeriesId ? { orthancSeriesId } : {}),
      ...(seriesUid ? { seriesUid } : {}),
    }));
  });

  app.get("/feed", async (_request, response) => {
    const cursor = ledger.cursor();
    try {
      const orthancLast = await orthanc.lastChange();
      response.json({ cursor, orthancLast, caughtUp: cursor >= orthancLast });
    } catch (error) {
      response.status(503).json({ cursor, error: (error as Error).message });
    }
  });

  // --- what the node can do ----------------------------------------------------------------------------------------

  app.get("/models", (_request, response) => {
    response.json((deps.models?.list() ?? []).map(({ manifest }) => ({
      id: manifest.id, version: manifest.version, task: manifest.task, name: manifest.name, description: manifest.description,
    })));
  });

  app.get("/pipelines", (_request, response) => {
    response.json((deps.pipelines ?? []).map((p) => ({
      id: p.id, description: p.description, model: p.model, outputLabel: p.outputLabel, enabled: p.enabled, select: p.select,
    })));
  });

  app.get("/schedules", (_request, response) => {
    response.json(deps.schedules?.list() ?? []);
  });

  app.post("/schedules/:name/run", asyncRoute(async (request, response) => {
    const name = String(request.params.name);
    if (!deps.schedules?.has(name)) {
      response.status(404).json({ error: `no schedule '${name}' (known: ${(deps.schedules?.list() ?? []).map((s) => s.name).join(", ")})` });
      return;
    }
    response.json(await deps.schedules.run(name as never));
  }));

  app.use((_request: Request, response: Response) => {
    response.status(404).json({ error: "no such route; see /openapi.json" });
  });
  app.use((error: Error, _request: Request, response: Response, _next: NextFunction) => {
    const status = (error as { status?: unknown }).status;
    response.status(typeof status === "number" && status >= 400 && status < 600 ? status : 500).json({ error: error.message });
  });
  return app;
}

export function listen(app: express.Express, host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host, () => resolve(server));
    server.once("error", reject);
  });
}
