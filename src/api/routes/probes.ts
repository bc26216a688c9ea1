/** Probes and telemetry: /health (liveness, from memory), /ready (asks Orthanc now), /metrics (Prometheus). */
import { z } from "zod";
import type { RouteDeps } from "../api-deps.js";
import { renderMetrics } from "../metrics.js";
import { route, type Route } from "../route.js";

const round1 = (value: number): number => Math.round(value * 10) / 10;

const OrthancStatus = z.object({ reachable: z.boolean(), checkedAt: z.string() }).loose();
const Health = z.object({
  status: z.enum(["ok", "unavailable"]),
  orthanc: OrthancStatus,
  eventLoop: z.object({ delayMaxMsLastSecond: z.number(), delayMaxMsLastMinute: z.number() }).optional(),
});
const Readiness = z.object({ ready: z.boolean(), checks: z.object({ started: z.boolean(), orthancReachable: z.boolean() }) });

export function probeRoutes(deps: RouteDeps): Route[] {
  const { reachability, eventLoop } = deps;
  return [
    route({
      method: "get",
      path: "/health",
      summary: "Liveness: the process answers, and Orthanc was reachable when last checked (at most ~5 s ago)",
      auth: false,
      answers: { 200: { description: "OK", schema: Health }, 503: { description: "Orthanc unreachable", schema: Health } },
      async handle(_input, response) {
        const { checkedAt, ...status } = await reachability.status();
        const loop = eventLoop
          ? { eventLoop: { delayMaxMsLastSecond: round1(eventLoop.lastSecondMaxMs()), delayMaxMsLastMinute: round1(eventLoop.lastMinuteMaxMs()) } }
          : {};
        response.status(status.reachable ? 200 : 503)
          .json({ status: status.reachable ? "ok" : "unavailable", orthanc: { ...status, checkedAt: checkedAt.toISOString() }, ...loop });
      },
    }),
    route({
      method: "get",
      path: "/ready",
      summary: "Readiness: models warmed, feed following, Orthanc reachable",
      auth: false,
      answers: { 200: { description: "ready", schema: Readiness }, 503: { description: "not ready", schema: Readiness } },
      async handle(_input, response) {
        const started = deps.ready?.() ?? true;
        const orthancReachable = (await reachability.check()).reachable;
        const ready = started && orthancReachable;
        response.status(ready ? 200 : 503).json({ ready, checks: { started, orthancReachable } });
      },
    }),
    route({
      method: "get",
      path: "/metrics",
      summary: "Prometheus text format: jobs by state, queue depth, stage and inference durations, schedules",
      answers: { 200: { description: "OK", contentType: "text/plain" } },
      handle(_input, response) {
        response.type("text/plain; version=0.0.4; charset=utf-8").send(renderMetrics({
          ledger: deps.ledger,
          ...(deps.schedules ? { schedules: () => deps.schedules!.list() } : {}),
          jobRunning: () => deps.runningJobId?.() !== undefined,
          ...(eventLoop ? { eventLoopDelayMaxMs: () => eventLoop.lastMinuteMaxMs() } : {}),
        }));
      },
    }),
  ];
}
