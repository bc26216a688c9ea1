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
const Readiness = z.object({
  ready: z.boolean(),
  checks: z.object({ started: z.boolean(), orthancReachable: z.boolean() }),
  /** Why Orthanc is not usable (cannot be reached, refuses the login), when it is not. */
  reason: z.string().optional(),
});

/** A probe: 200 when the check holds, 503 when not, the same body shape either way; no token needed. */
function probe(path: string, summary: string, body: z.ZodType, check: () => Promise<{ ok: boolean; body: object }>): Route {
  return route({
    method: "get",
    path,
    summary,
    auth: false,
    answers: { 200: { description: "OK", schema: body }, 503: { description: "not OK (see the body)", schema: body } },
    async handle(_input, response) {
      const result = await check();
      response.status(result.ok ? 200 : 503).json(result.body);
    },
  });
}

export function probeRoutes(deps: RouteDeps): Route[] {
  const { reachability, eventLoop } = deps;
  return [
    probe("/health", "Liveness: the process answers, and Orthanc was reachable when last checked (at most ~5 s ago)", Health, async () => {
      const { checkedAt, ...status } = await reachability.status();
      const loop = eventLoop
        ? { eventLoop: { delayMaxMsLastSecond: round1(eventLoop.lastSecondMaxMs()), delayMaxMsLastMinute: round1(eventLoop.lastMinuteMaxMs()) } }
        : {};
      const orthanc = { ...status, checkedAt: checkedAt.toISOString() };
      return { ok: status.reachable, body: { status: status.reachable ? "ok" : "unavailable", orthanc, ...loop } };
    }),
    probe("/ready", "Readiness: models warmed, feed following, Orthanc reachable", Readiness, async () => {
      const started = deps.ready?.() ?? true;
      const orthanc = await reachability.check();
      const ready = started && orthanc.reachable;
      const reason = orthanc.reachable ? {} : { reason: orthanc.error };
      return { ok: ready, body: { ready, checks: { started, orthancReachable: orthanc.reachable }, ...reason } };
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
