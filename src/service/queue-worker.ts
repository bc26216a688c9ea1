/**
 * A worker of the distributed mode (`ct-enhance worker`): warms its models once, then takes one job at a time from the
 * BullMQ queue in Redis and runs it with the same runner as the embedded mode (pipeline/runner.ts, unchanged),
 * against a ledger in its own memory seeded with the job's row. It reports the stage and slices as BullMQ progress
 * and answers the attempt's record (jobs/shipped-jobs.ts), which the follower applies to the one durable ledger.
 * While it works on a series it holds that series' lock in Redis and BullMQ's lock on the entry, both renewed; if it
 * dies, both expire and another worker takes the entry over (BullMQ's stalled-job check) and runs the same attempt:
 * the runner's "already complete in Orthanc" check, its removal of partial output and the deterministic output UIDs
 * make that attempt write its output once.
 */
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { hostname } from "node:os";
import { type Job as QueueEntry, DelayedError, Worker } from "bullmq";
import type { Config } from "../config.js";
import { IN_MEMORY, Ledger } from "../jobs/ledger.js";
import { logger } from "../log.js";
import { clearStaleSpool } from "../pipeline/outputs/held-instances.js";
import { type PipelineContext, runJob, spoolDirOf } from "../pipeline/runner.js";
import { previewPath } from "../pipeline/stages/preview.js";
import {
  type AttemptResult, type DispatchedJob, queueSettings, type ReportedProgress, redisConnection, SeriesLock,
} from "./redis-queue.js";
import { openContext } from "./service.js";

const log = logger("worker");

/** How long an entry whose series another worker holds waits before it is offered again, ms. */
const SERIES_BUSY_DELAY_MS = 2000;
/** How often the running job's progress is read from its ledger and reported, ms. */
const PROGRESS_INTERVAL_MS = 1000;

export interface RunningWorker {
  name: string;
  /** Stops taking jobs and waits for the one in hand. */
  stop(): Promise<void>;
}

export async function startWorker(config: Config): Promise<RunningWorker> {
  const settings = queueSettings(config);
  const name = settings.workerName ?? `${hostname()}-${process.pid}`;
  // The worker keeps no ledger file: each job's record lives in memory until the follower has it.
  const base = await openContext(recordingNotifications(config), new Ledger(IN_MEMORY));
  base.ledger.close();
  const stale = clearStaleSpool(spoolDirOf(config));
  if (stale > 0) log.info("removed derived series left waiting by a process that ended", { files: stale });
  for (const pipeline of base.pipelines.filter((p) => p.enabled)) {
    const warm = await base.inference.warmup(base.models.get(pipeline.model));
    log.info("model ready", { model: pipeline.model, provider: warm.provider, warmupMs: Math.round(warm.warmupMs) });
  }
  const connection = redisConnection(settings.redisUrl);
  const lockConnection = redisConnection(settings.redisUrl);
  lockConnection.on("error", () => undefined); // the worker's own connection says it (below)
  const locks = new SeriesLock(lockConnection, settings.name, settings.lockDurationMs);

  const worker = new Worker<DispatchedJob, AttemptResult>(settings.name,
    async (entry, token) => runEntry({ ...base }, entry, token ?? randomUUID(), name, locks, settings.lockDurationMs),
    {
      connection,
      name,
      concurrency: 1,
      lockDuration: settings.lockDurationMs,
      stalledInterval: settings.stalledIntervalMs,
      maxStalledCount: settings.maxStalledCount,
      // The follower removes an entry once it has applied its result; until then Redis keeps it.
      removeOnComplete: { count: 1_000_000 },
      removeOnFail: { count: 1_000_000 },
    });
  worker.on("error", (error) => log.warn("queue connection error", { error: error.message }));
  await worker.waitUntilReady();
  log.info("ct-enhance worker ready", { worker: name, queue: settings.name, pipelines: base.pipelines.filter((p) => p.enabled).map((p) => p.id) });
  return {
    name,
    async stop() {
      await worker.close();
      await base.inference.close();
      // BullMQ leaves a connection it was given open; the process ends once these are closed too.
      connection.disconnect();
      lockConnection.disconnect();
    },
  };
}

/**
 * The worker's settings with result notifications on, whatever its own webhook settings: the runner then records
 * each end's notification (with the outputs and checks only the worker knows) in the job's ledger, and the follower
 * keeps it when it notifies. The worker never sends one; the URL and secret here are never used.
 */
function recordingNotifications(config: Config): Config {
  return { ...config, webhook: { ...config.webhook, url: "http://notified.by.the.follower.invalid/", secret: "recorded-not-sent-by-a-worker" } };
}

/** Runs one entry's attempt to its end and answers its record; an entry whose series is busy waits and comes back. */
async function runEntry(
  base: PipelineContext, entry: QueueEntry<DispatchedJob, AttemptResult>, token: string, worker: string, locks: SeriesLock, lockMs: number,
): Promise<AttemptResult> {
  const { job } = entry.data;
  if (!(await locks.acquire(job.sourceSeriesUid, token))) {
    log.info("series busy with another worker; entry waits", { job: job.id, worker });
    await entry.moveToDelayed(Date.now() + SERIES_BUSY_DELAY_MS, token);
    throw new DelayedError();
  }
  const ledger = new Ledger(IN_MEMORY);
  const renew = setInterval(() => {
    locks.renew(job.sourceSeriesUid, token).then((held) => {
      if (!held) log.warn("lost the series lock (Redis unreachable longer than the lock lasts?)", { job: job.id, worker });
    }, () => undefined);
  }, Math.max(500, Math.floor(lockMs / 2)));
  let reported = "";
  const report = setInterval(() => {
    const now = ledger.jobs.get(job.id);
    if (!now) return;
    const progress: ReportedProgress = { worker, stage: now.stage, slicesDone: now.slicesDone, slicesTotal: now.slicesTotal, provider: now.provider };
    const text = JSON.stringify(progress);
    if (text === reported) return;
    reported = text;
    entry.updateProgress(progress as unknown as object).catch(() => undefined); // best effort: the result carries all of it
  }, PROGRESS_INTERVAL_MS);
  try {
    ledger.shipped.seed(job);
    ledger.jobs.addEvent(job.id, "worker", `attempt ${job.attempts} taken by worker ${worker}`);
    if ((entry.stalledCounter ?? 0) > 0) {
      ledger.jobs.addEvent(job.id, "taken-over", `the worker that had it stopped renewing its lock (${entry.stalledCounter} time(s)); ` +
        `${worker} runs the attempt again`);
    }
    await runJob({ ...base, ledger }, ledger.jobs.get(job.id)!);
    const record = ledger.shipped.record(job.id, worker);
    return { record, ...previewOf(base.config, job.id) };
  } finally {
    clearInterval(renew);
    clearInterval(report);
    ledger.close();
    await locks.release(job.sourceSeriesUid, token).catch(() => undefined);
  }
}

/** The preview the runner wrote in this worker's data folder, taken along (the follower's API serves it). */
function previewOf(config: Config, jobId: number): { previewPng?: string } {
  const file = previewPath(config.dataDir, jobId);
  if (!existsSync(file)) return {};
  try {
    return { previewPng: readFileSync(file).toString("base64") };
  } finally {
    rmSync(file, { force: true });
  }
}
