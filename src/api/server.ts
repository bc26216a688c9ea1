/**
 * ct-enhance's HTTP API: health for probes, and what the node did (jobs with their timelines, per-series decisions).
 * Everything but /health needs the bearer token when one is configured.
 */
import express, { type NextFunction, type Request, type Response } from "express";
import type { Server } from "node:http";
import type { Config } from "../config.js";
import { JobState, type Ledger } from "../jobs/ledger.js";
import type { OrthancClient } from "../orthanc/rest.js";

export interface ApiDeps {
  config: Config;
  ledger: Ledger;
  orthanc: OrthancClient;
}

function requireToken(token: string) {
  return (request: Request, response: Response, next: NextFunction): void => {
    if (!token || request.headers.authorization === `Bearer ${token}`) return next();
    response.status(401).json({ error: "missing or wrong bearer token (Authorization: Bearer <CT_ENHANCE_API_TOKEN>)" });
  };
}

export function createApi({ config, ledger, orthanc }: ApiDeps): express.Express {
  const app = express();
  app.disable("x-powered-by");

  app.get("/health", async (_request, response) => {
    try {
      const system = await orthanc.system();
      response.json({ status: "ok", orthanc: { reachable: true, version: system.Version } });
    } catch (error) {
      response.status(503).json({ status: "unavailable", orthanc: { reachable: false, error: (error as Error).message } });
    }
  });

  app.use(requireToken(config.api.token));

  app.get("/jobs", (request, response) => {
    const state = typeof request.query.state === "string" ? request.query.state : undefined;
    if (state && !Object.values(JobState).includes(state as JobState)) {
      response.status(400).json({ error: `state must be one of ${Object.values(JobState).join(", ")}` });
      return;
    }
    const series = typeof request.query.series === "string" ? request.query.series : undefined;
    response.json(ledger.jobs({
      ...(state ? { state: state as JobState } : {}),
      ...(series ? { sourceSeriesUid: series } : {}),
    }));
  });

  app.get("/jobs/:id", (request, response) => {
    const job = ledger.job(Number(request.params.id));
    if (!job) {
      response.status(404).json({ error: `no job ${request.params.id}` });
      return;
    }
    response.json({ ...job, events: ledger.events(job.id) });
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

  app.get("/decisions", (request, response) => {
    const orthancSeriesId = typeof request.query.series === "string" ? request.query.series : undefined;
    const seriesUid = typeof request.query.seriesUid === "string" ? request.query.seriesUid : undefined;
    response.json(ledger.decisions({
      ...(orthancSeriesId ? { orthancSeriesId } : {}),
      ...(seriesUid ? { seriesUid } : {}),
    }));
  });

  return app;
}

export function listen(app: express.Express, host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host, () => resolve(server));
    server.once("error", reject);
  });
}
