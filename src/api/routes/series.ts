/** /series and what the node decided about each series it saw: re-run on request, decisions, the change feed. */
import { z } from "zod";
import { redact } from "../../redact.js";
import type { RouteDeps } from "../api-deps.js";
import { RerunRequestError, rerunSeries } from "../rerun-series.js";
import { route, type Route } from "../route.js";
import { DecisionSchema, ErrorAnswer, RerunResultSchema } from "../schemas.js";

export function seriesRoutes({ ledger, orthanc, models, pipelines, laneRules, notifyQueue }: RouteDeps): Route[] {
  return [
    route({
      method: "post",
      path: "/series/:series/rerun",
      summary: "Run a series again: new run (new output UIDs) for each chosen pipeline; rules apply unless force",
      params: z.object({ series: z.string().min(1).describe("Orthanc series ID or SeriesInstanceUID") }),
      body: z.object({
        pipeline: z.string().optional().describe("one pipeline; default: every enabled pipeline"),
        force: z.boolean().optional().describe("bypass the selection rules"),
        urgent: z.boolean().optional().describe("queue in the urgent lane (a waiting job of the series is made urgent)"),
        requestedBy: z.string().optional().describe("who asked (kept in the timeline), e.g. orthanc-explorer"),
      }),
      answers: {
        202: { description: "at least one job queued", schema: RerunResultSchema },
        409: { description: "nothing queued (see reasons)", schema: RerunResultSchema },
        400: { description: "unknown pipeline, or our own output series", schema: ErrorAnswer },
        404: { description: "no such series", schema: ErrorAnswer },
        503: { description: "the service is not running (only the API is)", schema: ErrorAnswer },
      },
      async handle({ params, body }, response) {
        if (!models || !pipelines) {
          response.status(503).json({ error: "re-run is only available while the service runs (ct-enhance serve)" });
          return;
        }
        try {
          const result = await rerunSeries({ orthanc, ledger, models, pipelines, ...(laneRules ? { laneRules } : {}) }, params.series, {
            ...(body.pipeline ? { pipeline: body.pipeline } : {}),
            force: body.force === true,
            urgent: body.urgent === true,
            requestedBy: body.requestedBy?.slice(0, 60) ?? "the API",
          });
          const queued = result.jobs.some((j) => j.outcome === "queued" || j.outcome === "requeued" || j.outcome === "made-urgent");
          if (queued) notifyQueue?.();
          response.status(queued ? 202 : 409).json(result);
        } catch (error) {
          if (!(error instanceof RerunRequestError)) throw error;
          response.status(error.status).json({ error: error.message });
        }
      },
    }),
    route({
      method: "get",
      path: "/decisions",
      summary: "Selection decisions with their reasons",
      query: z.object({
        series: z.string().optional().describe("Orthanc series ID"),
        seriesUid: z.string().optional(),
      }),
      answers: { 200: { description: "OK", schema: z.array(DecisionSchema) } },
      handle({ query }, response) {
        response.json(ledger.feed.decisions({
          ...(query.series ? { orthancSeriesId: query.series } : {}),
          ...(query.seriesUid ? { seriesUid: query.seriesUid } : {}),
        }));
      },
    }),
    route({
      method: "get",
      path: "/feed",
      summary: "Change-feed cursor against Orthanc's last change",
      answers: {
        200: { description: "OK", schema: z.object({ cursor: z.number(), orthancLast: z.number(), caughtUp: z.boolean() }) },
        503: { description: "Orthanc unreachable", schema: z.object({ cursor: z.number(), error: z.string() }) },
      },
      async handle(_input, response) {
        const cursor = ledger.feed.cursor();
        try {
          const orthancLast = await orthanc.lastChange();
          response.json({ cursor, orthancLast, caughtUp: cursor >= orthancLast });
        } catch (error) {
          response.status(503).json({ cursor, error: redact((error as Error).message) });
        }
      },
    }),
  ];
}
