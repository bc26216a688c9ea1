/**
 * What the API is given by the service that runs it: the ledger and Orthanc always; models, pipelines, the
 * schedules and the queue while `ct-enhance serve` runs. The schedules' shape is declared here, as the API shows it,
 * so the API needs nothing from the service above it.
 */
import type { Config } from "../config.js";
import type { EventLoopDelay } from "../event-loop.js";
import type { Ledger } from "../jobs/ledger.js";
import type { ModelRegistry } from "../models/registry.js";
import type { OrthancClient } from "../orthanc/rest.js";
import type { PipelineDefinition } from "../pipeline/pipelines.js";
import type { LaneRules } from "../pipeline/lane-rules.js";
import type { OrthancReachability } from "../orthanc/reachability.js";

export interface ScheduleRun {
  startedAt: string;
  finishedAt: string | null;
  ok: boolean | null;
  /** What the run did (counts, IDs), or the error. */
  summary: unknown;
}

export interface ScheduleStatus {
  name: string;
  description: string;
  /** The cron expression, or "off". */
  cron: string;
  running: boolean;
  nextRun: string | null;
  lastRun: ScheduleRun | null;
  runs: number;
}

/** The node's timed work as the API lists and starts it. */
export interface ScheduleControl {
  list(): ScheduleStatus[];
  has(name: string): boolean;
  /** Runs the schedule now (or joins the run in progress) and answers its outcome. */
  run(name: string): Promise<ScheduleRun>;
}

/** Redis and the worker queue as the distributed mode's follower last found them (README "Scaling out"). */
export interface QueueStatus {
  reachable: boolean;
  error?: string;
  checkedAt: string;
  /** Entries waiting for a worker, being worked on, and waiting out a delay (their series busy). */
  waiting: number;
  active: number;
  delayed: number;
  /** The workers connected to the queue, by name. */
  workers: string[];
}

export interface ApiDeps {
  config: Config;
  ledger: Ledger;
  orthanc: OrthancClient;
  models?: ModelRegistry;
  pipelines?: PipelineDefinition[];
  /** The site's urgent rule, for the jobs a re-run creates. */
  laneRules?: LaneRules;
  schedules?: ScheduleControl;
  /** Wakes the job queue after the API queued work. */
  notifyQueue?: () => void;
  /** The job running now, if any. */
  runningJobId?: () => number | undefined;
  /** Readiness beyond Orthanc being reachable (models warmed, feed following). */
  ready?: () => boolean;
  /** The worker queue, in the distributed mode only. */
  queueStatus?: () => QueueStatus;
  /** This process's own event-loop delay, reported by /health and /metrics. */
  eventLoop?: EventLoopDelay;
}

/** What the routes share once the API is made. */
export interface RouteDeps extends ApiDeps {
  reachability: OrthancReachability;
}
