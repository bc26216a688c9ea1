/**
 * Probes and telemetry: /health (liveness, from memory), /ready (asks Orthanc now), /metrics (Prometheus).
 * /health answers 200 while the process answers, "degraded" with the reason in its body when Orthanc was unreachable
 * at its last check or the ledger cannot be written: a liveness probe must not restart a healthy process because
 * Orthanc or a disk is down, which a restart cannot mend. /ready answers 503 then, so no work is routed to it.
 */
import { z } from "zod";
import type { RouteDeps } from "../api-deps.js";
import { renderMetrics } from "../metrics.js";
import { route, type Route } from "../route.js";

const round1 = (value: number): number => Math.round(value * 10) / 10;

const OrthancStatus = z.object({ reachable: z.boolean(), checkedAt: z.string() }).loose();
/** The ledger's write health: while its disk refuses writes (read-only, full, I/O error) no change or job is taken. */
const LedgerStatus = z.object({
  writable: z.boolean(),
  path: z.string().optional(),
  code: z.string().optional(),
  error: z.string().optional(),
  since: z.string().optional(),
  action: z.string().optional(),
});
/** Redis and the worker queue (distributed mode only). */
const QueueHealth = z.object({
  reachable: z.boolean(),
  error: z.string().optional(),
  checkedAt: z.string(),
  waiting: z.number().int(),
  active: z.number().int(),
  delayed: z.number().int(),
  workers: z.array(z.string()),
});
const Health = z.object({
  status: z.enum(["ok", "degraded"]),
  orthanc: OrthancStatus,
  ledger: LedgerStatus,
  queue: QueueHealth.optional(),
  eventLoop: z.object({ delayMaxMsLastSecond: z.number(), delayMaxMsLastMinute: z.number() }).optional(),
});
const Readiness = z.object({
  ready: z.boolean(),
  checks: z.object({ started: z.boolean(), orthancReachable: z.boolean(), ledgerWritable: z.boolean() }),
  /** Why not ready, in words an operator can act on (Orthanc cannot be reached or refuses the login; the ledger). */
  reasons: z.array(z.string()),
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

/** The ledger's write health as the probes show it (asking it probes the disk at most once a second). */
function ledgerStatus(deps: RouteDeps): z.infer<typeof LedgerStatus> {
  if (deps.ledger.health.writable()) return { writable: true };
  const fault = deps.ledger.health.fault()!;
  return { writable: false, path: fault.path, code: fault.code, error: fault.message, since: fault.since, action: fault.action };
}

const ledgerReason = (status: z.infer<typeof LedgerStatus>): string =>
  `the ledger ${status.path} cannot be written (${status.code}: ${status.error}) since ${status.since}: no change is read ` +
  `and no job starts until it can; ${status.action}`;

export function probeRoutes(deps: RouteDeps): Route[] {
  const { reachability, eventLoop } = deps;
  return [
    probe("/health", "Liveness: 200 while the process answers; status 'degraded' when Orthanc was unreachable at its last check (at most ~5 s ago), the ledger cannot be written, or (distributed mode) Redis did not answer", Health, async () => {
      const { checkedAt, ...status } = await reachability.status();
      const loop = eventLoop
        ? { eventLoop: { delayMaxMsLastSecond: round1(eventLoop.lastSecondMaxMs()), delayMaxMsLastMinute: round1(eventLoop.lastMinuteMaxMs()) } }
        : {};
      const orthanc = { ...status, checkedAt: checkedAt.toISOString() };
      const ledger = ledgerStatus(deps);
      const queue = deps.queueStatus?.();
      const fine = status.reachable && ledger.writable && (queue?.reachable ?? true);
      return { ok: true, body: { status: fine ? "ok" : "degraded", orthanc, ledger, ...(queue ? { queue } : {}), ...loop } };
    }),
    probe("/ready", "Readiness: models warmed, feed following, Orthanc reachable, the ledger writable", Readiness, async () => {
      const started = deps.ready?.() ?? true;
      const orthanc = await reachability.check();
      const ledger = ledgerStatus(deps);
      const ready = started && orthanc.reachable && ledger.writable;
      const reasons = [
        ...(started ? [] : ["the service is starting (models warming up)"]),
        ...(orthanc.reachable ? [] : [orthanc.error ?? "Orthanc is not reachable"]),
        ...(ledger.writable ? [] : [ledgerReason(ledger)]),
      ];
      return { ok: ready, body: { ready, checks: { started, orthancReachable: orthanc.reachable, ledgerWritable: ledger.writable }, reasons } };
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
          ...(deps.queueStatus ? { queueStatus: deps.queueStatus } : {}),
          ...(eventLoop ? { eventLoopDelayMaxMs: () => eventLoop.lastMinuteMaxMs() } : {}),
        }));
      },
    }),
  ];
}
