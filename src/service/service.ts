/**
 * The service (`ct-enhance serve`), wired in one place: change feed -> series watcher (stability, selection) ->
 * job queue (fetch, infer, write, store) -> ledger, with the API beside it, and the result notifier (webhook) after
 * the ledger when one is configured. With a Redis URL (the distributed mode) the job queue is the dispatcher that hands
 * jobs to workers (queue-dispatcher.ts) and applies their records; everything else is the same.
 */
import type { Server } from "node:http";
import { createApi, listen } from "../api/server.js";
import { checkApiAccess, type Config, webhookSettings } from "../config.js";
import { EventLoopDelay } from "../event-loop.js";
import { Ledger } from "../jobs/ledger.js";
import { logger } from "../log.js";
import { InferenceService } from "../models/inference.js";
import { ModelRegistry } from "../models/registry.js";
import { ChangeFeed } from "../orthanc/change-feed.js";
import { OrthancClient } from "../orthanc/rest.js";
import { urlForLog, withholdConfigSecrets } from "../redact.js";
import { loadLaneRules, loadPipelines } from "../pipeline/pipelines.js";
import { OffPeakWindow } from "../jobs/off-peak-window.js";
import { clearStaleSpool } from "../pipeline/outputs/held-instances.js";
import { type PipelineContext, spoolDirOf } from "../pipeline/runner.js";
import { watchSeriesOnce } from "../pipeline/series-watcher.js";
import { SOFTWARE_VERSION } from "../version.js";
import { JobQueue } from "./job-queue.js";
import { QueueDispatcher } from "./queue-dispatcher.js";
import { ResultNotifier } from "./result-notifier.js";
import { ScheduleName, Schedules } from "./schedules.js";

const log = logger("service");

/** Everything a command needs, opened from the config; pipelines are checked against the models at once. */
export async function openContext(config: Config, ledger?: Ledger): Promise<PipelineContext> {
  withholdConfigSecrets(config); // from here on no log line or API error shows them
  const models = await ModelRegistry.load(config.modelsDir);
  const pipelines = loadPipelines(config.pipelinesFile);
  for (const pipeline of pipelines) {
    if (!models.has(pipeline.model)) {
      throw new Error(`pipeline ${pipeline.id} names model '${pipeline.model}', which is not in ${config.modelsDir}`);
    }
  }
  const opened = ledger ?? new Ledger(config.dataDir);
  // The lane rule lives with the ledger's next(): whoever asks it for the next job gets the window's verdict too.
  opened.jobs.lanes.offPeakWindow = new OffPeakWindow(config.lanes.offPeakWindow);
  return {
    config,
    orthanc: new OrthancClient(config.orthanc),
    ledger: opened,
    laneRules: loadLaneRules(config.pipelinesFile),
    models,
    inference: new InferenceService(config.inference.provider, config.inference.cpuThreads, config.inference.precision),
    pipelines,
  };
}

export interface RunningService {
  port: number;
  stop(): Promise<void>;
}

export async function startService(config: Config): Promise<RunningService> {
  checkApiAccess(config);
  const ctx = await openContext(config);
  const { ledger, orthanc, models, pipelines, laneRules } = ctx;
  const stale = clearStaleSpool(spoolDirOf(config));
  if (stale > 0) log.info("removed derived series left waiting by a process that ended", { files: stale });
  // In the distributed mode the workers run the models; the follower never does.
  const distributed = config.queue.redisUrl !== undefined;
  for (const pipeline of distributed ? [] : pipelines.filter((p) => p.enabled)) {
    const warm = await ctx.inference.warmup(models.get(pipeline.model));
    log.info("model ready", { model: pipeline.model, provider: warm.provider, warmupMs: Math.round(warm.warmupMs) });
  }
  const webhook = webhookSettings(config);
  const notifier = webhook ? new ResultNotifier(ledger, webhook) : undefined;
  const queue = distributed ? new QueueDispatcher(ctx, () => notifier?.notify()) : new JobQueue(ctx, undefined, () => notifier?.notify());
  let watching = false;
  let watchFailures = 0;
  const watch = async (): Promise<void> => {
    if (watching || !ledger.health.writable()) return;
    watching = true;
    try {
      const queued = await watchSeriesOnce({ orthanc, ledger, models, pipelines, laneRules, stableAgeSeconds: config.feed.stableAgeSeconds });
      if (watchFailures > 0) log.info("series watcher passes again", { failedPasses: watchFailures });
      watchFailures = 0;
      if (queued > 0) queue.notify();
    } catch (error) {
      watchFailures += 1;
      // It runs every poll interval: the first failure and every 30th, as the change feed does, not a line a poll. A
      // ledger that cannot be written is noted in its health (and said on /health and /ready) instead.
      if (!ledger.health.noteError(error) && (watchFailures === 1 || watchFailures % 30 === 0)) {
        log.warn("series watcher pass failed; will try again", { error: (error as Error).message, failures: watchFailures });
      }
    } finally {
      watching = false;
    }
  };
  const feed = new ChangeFeed(orthanc, ledger.feed, {
    pollIntervalMs: config.feed.pollIntervalMs,
    pageSize: config.feed.pageSize,
    onSeriesRecorded: () => void watch(),
    onResync: (why) => {
      log.info("reconciling Orthanc's series with the ledger", { why });
      void schedules.run(ScheduleName.Reconcile);
    },
    writeGate: ledger.health,
  });
  const watcherTimer = setInterval(() => void watch(), config.feed.pollIntervalMs);

  const schedules = new Schedules({ config, ledger, orthanc, watchSeries: watch, notifyQueue: () => queue.notify() });
  let started = false;
  const eventLoop = new EventLoopDelay();
  const api = createApi({
    config, ledger, orthanc, models, pipelines, laneRules, schedules, eventLoop,
    notifyQueue: () => queue.notify(),
    runningJobId: () => queue.currentJob()?.id,
    ...(queue instanceof QueueDispatcher ? { queueStatus: () => queue.queueStatus() } : {}),
    ready: () => started,
  });
  const server: Server = await listen(api, config.api.host, config.api.port);
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : config.api.port;
  feed.start();
  queue.start();
  notifier?.start();
  schedules.start();
  started = true;
  log.info("ct-enhance serving", {
    version: SOFTWARE_VERSION,
    api: `http://${config.api.host}:${port}`,
    orthanc: urlForLog(config.orthanc.url),
    pipelines: pipelines.filter((p) => p.enabled).map((p) => p.id),
    mode: distributed ? "distributed (jobs go to the worker queue in Redis)" : "embedded",
  });

  return {
    port,
    async stop() {
      clearInterval(watcherTimer);
      await schedules.stop();
      await feed.stop();
      await queue.stop();
      await notifier?.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await ctx.inference.close();
      ledger.jobs.lanes.offPeakWindow?.close();
      ledger.close();
      eventLoop.stop();
    },
  };
}
