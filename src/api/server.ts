/**
 * ct-enhance's HTTP API, assembled from one file of routes per resource: probes and /metrics (routes/probes.ts),
 * jobs (routes/jobs.ts), series, decisions and the feed (routes/series.ts), models, pipelines and schedules
 * (routes/catalog.ts). Every route is declared with zod schemas (route.ts), which validate its requests and write its
 * entry in /openapi.json. Everything but /health, /ready and /openapi.json needs the bearer token (auth.ts).
 */
import express, { type NextFunction, type Request, type Response } from "express";
import type { Server } from "node:http";
import { OrthancReachability } from "../orthanc/reachability.js";
import { redact } from "../redact.js";
import { SOFTWARE_VERSION } from "../version.js";
import type { ApiDeps, RouteDeps } from "./api-deps.js";
import { requireToken } from "./auth.js";
import { bodyTooLarge, readJsonBody } from "./body-limit.js";
import { mountRoutes, openApiPaths, route, type Route } from "./route.js";
import { catalogRoutes } from "./routes/catalog.js";
import { jobRoutes } from "./routes/jobs.js";
import { probeRoutes } from "./routes/probes.js";
import { seriesRoutes } from "./routes/series.js";

/** The OpenAPI 3.1 document of the routes. */
export function openApiDocument(routes: readonly Route[]): object {
  return {
    openapi: "3.1.0",
    info: {
      title: "ct-enhance API",
      version: SOFTWARE_VERSION,
      description: "The AI node beside Orthanc: its jobs, what an operator can do with them, schedules and metrics. " +
        "Everything but /health, /ready and /openapi.json needs `Authorization: Bearer <CT_ENHANCE_API_TOKEN>`.",
    },
    security: [{ bearer: [] }],
    paths: openApiPaths(routes),
    components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
  };
}

export function apiRoutes(deps: RouteDeps): Route[] {
  const routes = [...probeRoutes(deps), ...jobRoutes(deps), ...seriesRoutes(deps), ...catalogRoutes(deps)];
  const description = route({
    method: "get",
    path: "/openapi.json",
    summary: "This document",
    auth: false,
    answers: { 200: { description: "OpenAPI 3.1" } },
    handle(_input, response) {
      response.json(openApiDocument(all));
    },
  });
  const all = [...routes, description];
  return all;
}

export function createApi(deps: ApiDeps): express.Express {
  const app = express();
  app.disable("x-powered-by");
  // Liveness answers from memory (Orthanc as last checked, at most ~5 s ago); readiness asks Orthanc now.
  const routes = apiRoutes({ ...deps, reachability: new OrthancReachability(deps.orthanc) });
  mountRoutes(app, routes, requireToken(deps.config.api.token), readJsonBody);
  app.use((_request: Request, response: Response) => {
    response.status(404).json({ error: "no such route; see /openapi.json" });
  });
  app.use(bodyTooLarge);
  app.use((error: Error, _request: Request, response: Response, _next: NextFunction) => {
    const status = (error as { status?: unknown }).status;
    response.status(typeof status === "number" && status >= 400 && status < 600 ? status : 500).json({ error: redact(error.message) });
  });
  return app;
}

export function listen(app: express.Express, host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host, () => resolve(server));
    server.once("error", reject);
  });
}
