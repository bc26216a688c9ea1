/**
 * The follower's side of the distributed mode (`ct-enhance serve` with a Redis URL): instead of running jobs, it hands
 * them to the BullMQ queue in the ledger's order (`ledger.jobs.next()`), keeping only about as many waiting there as
 * workers are idle, so which job runs next stays the ledger's decision. It applies what workers report: progress as it
 * comes (best effort), and each attempt's record (jobs/shipped-jobs.ts) in one ledger transaction, then removes the
 * entry. Results wait in Redis while the follower is down; every pass sweeps the queue's completed and failed entries,
 * so a restarted follower applies them all. A job the ledger shows running whose entry Redis no longer has (the
 * follower stopped between the two, or Redis lost it) is queued again: nothing is lost, and the runner's checks and
 * deterministic UIDs keep a second run from writing a second output.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { type Job as QueueEntry, Queue, QueueEvents } from "bullmq";
import type { Redis } from "ioredis";
import type { QueueStatus } from "../api/api-deps.js";
import { webhookSettings } from "../config.js";
import { type Job, JobState } from "../jobs/job-records.js";
import { logger } from "../log.js";
import { endJob, NO_RESULT } from "../pipeline/job-notification.js";
import type { PipelineContext } from "../pipeline/runner.js";
import { previewPath } from "../pipeline/stages/preview.js";
import {
  type AttemptResult, type DispatchedJob, entryIdOf, parseEntryId, queueSettings, type ReportedProgress, redisConnection,
} from "./redis-queue.js";

const log = logger("dispatcher");

/** How long a stop waits for BullMQ to close its side before the connections are ended, ms. */
const CLOSE_GRACE_MS = 2000;
/** Entries read from the completed and failed sets per pass. */
const SWEEP_BATCH = 100;

export class QueueDispatcher {
  private readonly settings;
  private queue: Queue<DispatchedJob, AttemptResult> | undefined;
  private events: QueueEvents | undefined;
  /** BullMQ leaves connections it was given open when it closes: they are ended here. */
  private readonly connections: Redis[] = [];
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private failures = 0;
  private status: QueueStatus = { reachable: false, error: "not yet asked", checkedAt: new Date().toISOString(), waiting: 0, active: 0, delayed: 0, workers: [] };

  constructor(private readonly ctx: PipelineContext, private readonly afterApply: () => void = () => undefined) {
    this.settings = queueSettings(ctx.config);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const { name, redisUrl } = this.settings;
    const connection = (failFast: boolean): Redis => {
      const made = redisConnection(redisUrl, { failFast });
      made.on("error", () => undefined); // said on /health and in the pass's log line
      this.connections.push(made);
      return made;
    };
    this.queue = new Queue<DispatchedJob, AttemptResult>(name, { connection: connection(true) });
    this.queue.on("error", () => undefined); // said on /health and in the pass's log line
    // Its blocking reads only wake the dispatcher early; the passes do the work.
    this.events = new QueueEvents(name, { connection: connection(false) });
    this.events.on("error", () => undefined);
    this.events.on("progress", ({ jobId, data }) => this.applyProgress(jobId, data));
    for (const wakeOn of ["completed", "failed", "active", "stalled"] as const) this.events.on(wakeOn, () => this.notify());
    this.loop = this.work();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    // With Redis away BullMQ's close waits for it; a stopping follower gives it a moment, then ends the connections.
    const closed = Promise.all([this.events?.close(), this.queue?.close()]).catch(() => undefined);
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, CLOSE_GRACE_MS).unref())]);
    for (const connection of this.connections.splice(0)) connection.disconnect();
  }

  notify(): void {
    this.wake?.();
  }

  /** A job a worker runs now (the ledger's first running job), as the embedded queue answers its own. */
  currentJob(): Job | undefined {
    return this.ctx.ledger.jobs.list({ state: JobState.Running })[0];
  }

  /** Redis and the queue as the last pass found them (for /health and /metrics). */
  queueStatus(): QueueStatus {
    return this.status;
  }

  private async work(): Promise<void> {
    while (this.running) {
      try {
        await this.pass();
        if (this.failures > 0) log.info("Redis answers again", { failedPasses: this.failures });
        this.failures = 0;
      } catch (error) {
        // A ledger that refuses writes is said by its own health (/health, /ready); Redis is not to blame for it.
        if (!this.ctx.ledger.health.noteError(error)) this.noteRedisFailure(error as Error);
      }
      if (!this.running) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.settings.sweepIntervalMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  private noteRedisFailure(error: Error): void {
    this.failures += 1;
    this.status = { ...this.status, reachable: false, error: error.message, checkedAt: new Date().toISOString() };
    if (this.failures === 1 || this.failures % 30 === 0) log.warn("queue pass failed; will try again", { error: error.message, failures: this.failures });
  }

  /** One pass: apply what finished, queue again what Redis lost, then hand out jobs for idle workers. */
  private async pass(): Promise<void> {
    const queue = this.queue!;
    for (const entry of await queue.getCompleted(0, SWEEP_BATCH - 1)) await this.applyResult(entry);
    for (const entry of await queue.getFailed(0, SWEEP_BATCH - 1)) await this.applyLoss(entry);
    const { ledger } = this.ctx;
    for (const job of ledger.jobs.list({ state: JobState.Running })) {
      if (await queue.getJob(entryIdOf(job.id, job.attempts))) continue;
      ledger.jobs.transition(job.id, [JobState.Running], JobState.Queued, { kind: "recovered",
        message: `its queue entry (attempt ${job.attempts}) is not in Redis: the follower stopped before adding it, or Redis lost it; queued again` });
      log.warn("running job has no queue entry; queued again", { job: job.id, attempt: job.attempts });
    }
    const counts = await queue.getJobCounts("waiting", "prioritized", "active", "delayed");
    const workers = (await queue.getWorkers()).map((w) => workerNameOf(w.name ?? "")).sort();
    let waiting = (counts.waiting ?? 0) + (counts.prioritized ?? 0);
    const active = counts.active ?? 0;
    // About one waiting per idle worker (at least one, so a worker that starts finds work at once).
    const wanted = Math.max(1, workers.length - active);
    while (waiting < wanted && ledger.health.writable()) {
      const job = ledger.jobs.next();
      if (!job) break;
      await this.dispatch(job);
      waiting += 1;
    }
    this.status = { reachable: true, checkedAt: new Date().toISOString(), waiting, active, delayed: counts.delayed ?? 0, workers };
  }

  /** The job's next attempt goes to the queue: counted in the ledger first, then added (a second add is a no-op). */
  private async dispatch(job: Job): Promise<void> {
    const attempt = job.attempts + 1;
    const started = this.ctx.ledger.jobs.transition(job.id, [JobState.Queued, JobState.RetryWait], JobState.Running,
      { kind: "dispatched", message: `attempt ${attempt} handed to the worker queue` }, { attempts: "next", error: null, stage: "waiting for a worker" });
    if (!started) return;
    const row = this.ctx.ledger.jobs.get(job.id)!;
    await this.queue!.add("job", { job: row }, { jobId: entryIdOf(job.id, attempt) });
    log.info("job dispatched", { job: job.id, attempt, pipeline: job.pipeline });
  }

  private applyProgress(entryId: string, data: unknown): void {
    const entry = parseEntryId(entryId);
    const progress = data as Partial<ReportedProgress> | undefined;
    if (!entry || typeof progress !== "object" || !progress?.worker) return;
    try {
      this.ctx.ledger.shipped.progress(entry.jobId, entry.attempt, progress.worker, {
        stage: progress.stage ?? null, slicesDone: progress.slicesDone ?? 0, slicesTotal: progress.slicesTotal ?? 0, provider: progress.provider ?? null,
      });
    } catch (error) {
      this.ctx.ledger.health.noteError(error); // progress is best effort; the result carries it again
    }
  }

  /** A worker's answer, applied once (jobs/shipped-jobs.ts), then the entry goes. */
  private async applyResult(entry: QueueEntry<DispatchedJob, AttemptResult>): Promise<void> {
    const result = entry.returnvalue;
    if (!result?.record) {
      await entry.remove();
      return;
    }
    const applied = this.ctx.ledger.shipped.apply(result.record, webhookSettings(this.ctx.config) !== undefined);
    if (applied && result.previewPng) this.writePreview(result.record.jobId, result.previewPng);
    if (applied) {
      log.info(`job ${result.record.job.state}`, { job: result.record.jobId, attempt: result.record.attempt, worker: result.record.worker });
      this.afterApply();
    }
    await entry.remove();
  }

  /**
   * An entry that ended without a result (its worker threw outside the runner, or lost it more often than
   * maxStalledCount allows): the attempt fails, retryable, under the ledger's retry policy.
   */
  private async applyLoss(entry: QueueEntry<DispatchedJob, AttemptResult>): Promise<void> {
    const named = parseEntryId(entry.id);
    const job = named ? this.ctx.ledger.jobs.get(named.jobId) : undefined;
    if (named && job?.state === JobState.Running && job.attempts === named.attempt) {
      const { maxAttempts, retryDelaySeconds } = this.ctx.config.jobs;
      const nextRetryAt = job.attempts < maxAttempts ? new Date(Date.now() + retryDelaySeconds * 1000 * 2 ** (job.attempts - 1)) : null;
      const message = `the attempt ended without a result: ${entry.failedReason || "unknown"}`;
      endJob(this.ctx.ledger, webhookSettings(this.ctx.config) !== undefined, job.id,
        () => this.ctx.ledger.jobs.fail(job.id, { stage: job.stage ?? "queue", message, retryable: true }, nextRetryAt), NO_RESULT);
      log.warn("job's attempt lost on the queue", { job: job.id, attempt: job.attempts, reason: entry.failedReason });
      this.afterApply();
    }
    await entry.remove();
  }

  private writePreview(jobId: number, base64: string): void {
    try {
      const file = previewPath(this.ctx.config.dataDir, jobId);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, Buffer.from(base64, "base64"));
    } catch (error) {
      log.warn("preview not written", { job: jobId, error: (error as Error).message });
    }
  }
}

/** BullMQ names a worker's connection after the queue and the worker's name; the API shows the name. */
function workerNameOf(clientName: string): string {
  const at = clientName.lastIndexOf(":w:");
  return at >= 0 ? clientName.slice(at + 3) : clientName;
}
