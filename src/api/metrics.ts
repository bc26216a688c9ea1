/**
 * /metrics in the Prometheus text exposition format (version 0.0.4): jobs by state, queue depth, stage durations
 * and inference time per execution provider (histograms, from the ledger, so they survive restarts), result
 * notifications by outcome (also from the ledger), the feed cursor and the schedules' last runs.
 */
import { LANES } from "../jobs/lanes.js";
import { JobState } from "../jobs/job-records.js";
import type { Ledger } from "../jobs/ledger.js";
import { DURATION_BUCKETS_SECONDS, type StageDurationStats } from "../jobs/stage-durations.js";
import { SOFTWARE_VERSION } from "../version.js";
import type { QueueStatus, ScheduleStatus } from "./api-deps.js";

export interface MetricsSources {
  ledger: Ledger;
  schedules?: () => ScheduleStatus[];
  jobRunning?: () => boolean;
  /** The worker queue in Redis (distributed mode only). */
  queueStatus?: () => QueueStatus;
  /** Worst event-loop delay of the last minute, ms. */
  eventLoopDelayMaxMs?: () => number;
}

const escapeLabel = (value: string): string => value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

function labels(pairs: Record<string, string>): string {
  const entries = Object.entries(pairs);
  return entries.length === 0 ? "" : `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`;
}

class Exposition {
  private readonly lines: string[] = [];

  family(name: string, type: "gauge" | "counter" | "histogram", help: string): this {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    return this;
  }

  sample(name: string, pairs: Record<string, string>, value: number): this {
    this.lines.push(`${name}${labels(pairs)} ${Number.isFinite(value) ? value : 0}`);
    return this;
  }

  histogram(name: string, pairs: Record<string, string>, stats: { buckets: number[]; count: number; sumSeconds: number }): this {
    DURATION_BUCKETS_SECONDS.forEach((bound, i) => this.sample(`${name}_bucket`, { ...pairs, le: String(bound) }, stats.buckets[i] ?? 0));
    this.sample(`${name}_bucket`, { ...pairs, le: "+Inf" }, stats.count);
    this.sample(`${name}_sum`, pairs, stats.sumSeconds);
    return this.sample(`${name}_count`, pairs, stats.count);
  }

  text(): string {
    return `${this.lines.join("\n")}\n`;
  }
}

/** Sums rows of the same key (stage timings are kept per stage and provider). */
function mergeBy(rows: StageDurationStats[], key: (row: StageDurationStats) => string): Map<string, StageDurationStats> {
  const merged = new Map<string, StageDurationStats>();
  for (const row of rows) {
    const k = key(row);
    const into = merged.get(k);
    if (!into) merged.set(k, { ...row, buckets: [...row.buckets] });
    else {
      into.count += row.count;
      into.sumSeconds += row.sumSeconds;
      into.buckets = into.buckets.map((n, i) => n + (row.buckets[i] ?? 0));
    }
  }
  return merged;
}

export function renderMetrics({ ledger, schedules, jobRunning, queueStatus, eventLoopDelayMaxMs }: MetricsSources): string {
  const out = new Exposition();
  out.family("ct_enhance_build_info", "gauge", "Always 1; the version label says which ct-enhance runs.")
    .sample("ct_enhance_build_info", { version: SOFTWARE_VERSION }, 1);

  const counts = ledger.jobs.countsByState();
  out.family("ct_enhance_jobs", "gauge", "Jobs in the ledger, by state.");
  for (const state of Object.values(JobState)) out.sample("ct_enhance_jobs", { state }, counts[state]);

  out.family("ct_enhance_queue_depth", "gauge", "Jobs waiting to run now (queued, and retries that are due).")
    .sample("ct_enhance_queue_depth", {}, ledger.jobs.queueDepth());
  const now = new Date();
  const byLane = ledger.jobs.lanes.waiting(now);
  out.family("ct_enhance_lane_queue_depth", "gauge",
    "Jobs waiting to run, by lane (urgent, routine, off-peak); off-peak ones start only while the window is open.");
  for (const lane of LANES) out.sample("ct_enhance_lane_queue_depth", { lane }, byLane[lane]);
  out.family("ct_enhance_off_peak_window_open", "gauge", "1 while the off-peak window is open.")
    .sample("ct_enhance_off_peak_window_open", {}, ledger.jobs.lanes.offPeakOpen(now) ? 1 : 0);
  out.family("ct_enhance_job_running", "gauge", "1 while a job is running.")
    .sample("ct_enhance_job_running", {}, jobRunning?.() ? 1 : 0);
  out.family("ct_enhance_feed_cursor", "gauge", "Last Orthanc change sequence number the change feed recorded.")
    .sample("ct_enhance_feed_cursor", {}, ledger.feed.cursor());

  const byWorker = ledger.shipped.countsByWorker();
  if (queueStatus || byWorker.length > 0) {
    out.family("ct_enhance_worker_jobs", "gauge", "Jobs in the ledger by the worker that ran their last attempt (distributed mode), and state.");
    for (const row of byWorker) out.sample("ct_enhance_worker_jobs", { worker: row.worker, state: row.state }, row.count);
  }
  if (queueStatus) {
    const queue = queueStatus();
    out.family("ct_enhance_redis_up", "gauge", "1 when Redis answered the follower's last pass over the worker queue.")
      .sample("ct_enhance_redis_up", {}, queue.reachable ? 1 : 0);
    out.family("ct_enhance_worker_queue_entries", "gauge", "Entries of the worker queue in Redis by state, as of the last pass.");
    out.sample("ct_enhance_worker_queue_entries", { state: "waiting" }, queue.waiting);
    out.sample("ct_enhance_worker_queue_entries", { state: "active" }, queue.active);
    out.sample("ct_enhance_worker_queue_entries", { state: "delayed" }, queue.delayed);
    out.family("ct_enhance_workers", "gauge", "Workers connected to the queue.").sample("ct_enhance_workers", {}, queue.workers.length);
  }

  if (eventLoopDelayMaxMs) {
    out.family("ct_enhance_event_loop_delay_max_seconds", "gauge", "Worst delay of this process's event loop over the last minute.")
      .sample("ct_enhance_event_loop_delay_max_seconds", {}, eventLoopDelayMaxMs() / 1000);
  }

  const notified = ledger.notifications.totals();
  out.family("ct_enhance_webhook_deliveries_total", "counter",
    "Result notifications (webhook) by final outcome: delivered, or failed (refused by the receiver or out of attempts).");
  out.sample("ct_enhance_webhook_deliveries_total", { outcome: "delivered" }, notified.delivered);
  out.sample("ct_enhance_webhook_deliveries_total", { outcome: "failed" }, notified.failed);
  out.family("ct_enhance_webhook_retries_total", "counter", "Webhook attempts that failed and were scheduled again (no answer, 408, 429, 5xx).")
    .sample("ct_enhance_webhook_retries_total", {}, notified.retried);
  out.family("ct_enhance_webhook_pending", "gauge", "Result notifications waiting to be delivered.")
    .sample("ct_enhance_webhook_pending", {}, ledger.notifications.pendingCount());

  const timings = ledger.stageDurations.stats();
  out.family("ct_enhance_stage_duration_seconds", "histogram", "Seconds a job spent in each stage (fetch, infer, store).");
  for (const [stage, stats] of mergeBy(timings, (row) => row.stage)) {
    out.histogram("ct_enhance_stage_duration_seconds", { stage }, stats);
  }
  out.family("ct_enhance_inference_duration_seconds", "histogram", "Seconds of the infer stage per series, by execution provider.");
  for (const [provider, stats] of mergeBy(timings.filter((row) => row.stage === "infer"), (row) => row.provider || "unknown")) {
    out.histogram("ct_enhance_inference_duration_seconds", { provider }, stats);
  }

  const scheduleList = schedules?.() ?? [];
  out.family("ct_enhance_schedule_runs_total", "counter", "Runs of each schedule since the service started.");
  for (const s of scheduleList) out.sample("ct_enhance_schedule_runs_total", { schedule: s.name }, s.runs);
  out.family("ct_enhance_schedule_last_success", "gauge", "1 when the schedule's last run succeeded, 0 when it failed or has not run.");
  for (const s of scheduleList) out.sample("ct_enhance_schedule_last_success", { schedule: s.name }, s.lastRun?.ok ? 1 : 0);
  out.family("ct_enhance_schedule_last_run_timestamp_seconds", "gauge", "When the schedule last finished (Unix time; 0 = never).");
  for (const s of scheduleList) {
    const finished = s.lastRun?.finishedAt ? Date.parse(s.lastRun.finishedAt) / 1000 : 0;
    out.sample("ct_enhance_schedule_last_run_timestamp_seconds", { schedule: s.name }, finished);
  }
  return out.text();
}
