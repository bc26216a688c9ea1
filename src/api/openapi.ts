/** The OpenAPI 3.1 description of the API (served at /openapi.json). Keep it beside the routes in server.ts. */
import { JobState } from "../jobs/ledger.js";
import { SOFTWARE_VERSION } from "../version.js";

const json = (schema: object, description = "OK") => ({ description, content: { "application/json": { schema } } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const error = (description: string) => json(ref("Error"), description);
const jobIdParameter = { name: "id", in: "path", required: true, schema: { type: "integer" } };

export function openApiDocument(): object {
  return {
    openapi: "3.1.0",
    info: {
      title: "ct-enhance API",
      version: SOFTWARE_VERSION,
      description: "The AI node beside Orthanc: its jobs, what an operator can do with them, schedules and metrics. " +
        "Everything but /health, /ready and /openapi.json needs `Authorization: Bearer <CT_ENHANCE_API_TOKEN>`.",
    },
    security: [{ bearer: [] }],
    paths: {
      "/health": { get: { summary: "Liveness: the process answers, and Orthanc was reachable when last checked (at most ~5 s ago)", security: [],
        responses: { 200: json({ type: "object" }), 503: json({ type: "object" }, "Orthanc unreachable") } } },
      "/ready": { get: { summary: "Readiness: models warmed, feed following, Orthanc reachable", security: [],
        responses: { 200: json({ type: "object" }), 503: json({ type: "object" }, "not ready") } } },
      "/openapi.json": { get: { summary: "This document", security: [], responses: { 200: json({ type: "object" }) } } },
      "/metrics": { get: { summary: "Prometheus text format: jobs by state, queue depth, stage and inference durations, schedules",
        responses: { 200: { description: "OK", content: { "text/plain": { schema: { type: "string" } } } }, 401: error("no or wrong token") } } },
      "/jobs": { get: { summary: "List jobs (oldest first)",
        parameters: [
          { name: "state", in: "query", schema: { type: "string", enum: Object.values(JobState) } },
          { name: "series", in: "query", description: "source SeriesInstanceUID", schema: { type: "string" } },
          { name: "orthancSeries", in: "query", description: "source Orthanc series ID", schema: { type: "string" } },
          { name: "pipeline", in: "query", schema: { type: "string" } },
          { name: "limit", in: "query", description: "only the last N", schema: { type: "integer", minimum: 1 } },
        ],
        responses: { 200: json({ type: "array", items: ref("Job") }), 400: error("bad filter"), 401: error("no or wrong token") } } },
      "/jobs/{id}": { get: { summary: "One job with its event timeline", parameters: [jobIdParameter],
        responses: { 200: json(ref("JobWithTimeline")), 404: error("no such job") } } },
      "/jobs/{id}/preview.png": { get: { summary: "Before/after PNG of the middle slice (source left, output right)",
        parameters: [jobIdParameter],
        responses: { 200: { description: "PNG", content: { "image/png": {} } }, 404: error("no preview yet") } } },
      "/jobs/{id}/retry": { post: { summary: "Queue a failed, cancelled or retry-wait job again now (same run, attempts reset)",
        parameters: [jobIdParameter], responses: { 202: json(ref("Job")), 404: error("no such job"), 409: error("not in a retryable state") } } },
      "/jobs/{id}/cancel": { post: { summary: "Cancel a queued or retry-wait job", parameters: [jobIdParameter],
        responses: { 200: json(ref("Job")), 404: error("no such job"), 409: error("running or finished") } } },
      "/series/{series}/rerun": { post: {
        summary: "Run a series again: new run (new output UIDs) for each chosen pipeline; rules apply unless force",
        parameters: [{ name: "series", in: "path", required: true, description: "Orthanc series ID or SeriesInstanceUID", schema: { type: "string" } }],
        requestBody: { content: { "application/json": { schema: { type: "object", properties: {
          pipeline: { type: "string", description: "one pipeline; default: every enabled pipeline" },
          force: { type: "boolean", description: "bypass the selection rules" },
          requestedBy: { type: "string", description: "who asked (kept in the timeline), e.g. orthanc-explorer" },
        } } } } },
        responses: { 202: json(ref("RerunResult"), "at least one job queued"), 409: json(ref("RerunResult"), "nothing queued (see reasons)"),
          400: error("unknown pipeline, or our own output series"), 404: error("no such series") } } },
      "/decisions": { get: { summary: "Selection decisions with their reasons",
        parameters: [{ name: "series", in: "query", description: "Orthanc series ID", schema: { type: "string" } },
          { name: "seriesUid", in: "query", schema: { type: "string" } }],
        responses: { 200: json({ type: "array", items: { type: "object" } }) } } },
      "/feed": { get: { summary: "Change-feed cursor against Orthanc's last change", responses: { 200: json({ type: "object" }) } } },
      "/models": { get: { summary: "Models (id, version, task)", responses: { 200: json({ type: "array", items: { type: "object" } }) } } },
      "/pipelines": { get: { summary: "Pipelines and their selection rules", responses: { 200: json({ type: "array", items: { type: "object" } }) } } },
      "/schedules": { get: { summary: "Schedules (reconcile, retry, retention): cron, next and last run",
        responses: { 200: json({ type: "array", items: ref("Schedule") }) } } },
      "/schedules/{name}/run": { post: { summary: "Run a schedule now and wait for its outcome",
        parameters: [{ name: "name", in: "path", required: true, schema: { type: "string", enum: ["reconcile", "retry", "retention"] } }],
        responses: { 200: json({ type: "object" }), 404: error("no such schedule") } } },
    },
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      schemas: {
        Error: { type: "object", required: ["error"], properties: { error: { type: "string" } } },
        Job: { type: "object", properties: {
          id: { type: "integer" }, sourceOrthancId: { type: "string" }, sourceSeriesUid: { type: "string" }, studyUid: { type: "string" },
          pipeline: { type: "string" }, modelId: { type: "string" }, modelVersion: { type: "string" },
          run: { type: "integer", description: "1 for the first run; a re-run increments it (new output UIDs)" },
          state: { type: "string", enum: Object.values(JobState) }, stage: { type: ["string", "null"] },
          attempts: { type: "integer" }, nextRetryAt: { type: ["string", "null"], format: "date-time" },
          errorStage: { type: ["string", "null"] }, errorMessage: { type: ["string", "null"] }, errorRetryable: { type: ["boolean", "null"] },
          provider: { type: ["string", "null"] }, slicesDone: { type: "integer" }, slicesTotal: { type: "integer" },
          outputSeriesUid: { type: ["string", "null"] }, createdAt: { type: "string" }, updatedAt: { type: "string" },
        } },
        JobWithTimeline: { allOf: [ref("Job"), { type: "object", properties: {
          preview: { type: ["string", "null"] },
          events: { type: "array", items: { type: "object", properties: { at: { type: "string" }, kind: { type: "string" }, message: { type: "string" } } } },
        } }] },
        RerunResult: { type: "object", properties: {
          series: { type: "string" }, seriesUid: { type: "string" },
          jobs: { type: "array", items: { type: "object", properties: {
            pipeline: { type: "string" }, outcome: { type: "string", enum: ["queued", "requeued", "unchanged", "skipped"] },
            reason: { type: "string" }, job: { oneOf: [ref("Job"), { type: "null" }] },
          } } },
        } },
        Schedule: { type: "object", properties: {
          name: { type: "string" }, description: { type: "string" }, cron: { type: "string" }, running: { type: "boolean" },
          nextRun: { type: ["string", "null"] }, runs: { type: "integer" }, lastRun: { type: ["object", "null"] },
        } },
      },
    },
  };
}
