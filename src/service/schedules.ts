/**
 * The node's timed work (node-cron): reconcile (series the feed missed or that changed while we were down), retry
 * (retry-wait jobs whose time has come go back to the queue), retention (finished job records older than N days),
 * off-peak (wakes the job queue at every minute of the off-peak window, so off-peak jobs start when it opens).
 * Each schedule's expression, last run and next run are visible in the API (GET /schedules) and can be run now
 * (POST /schedules/:name/run). One run of a schedule at a time.
 */
import cron, { type ScheduledTask } from "node-cron";
import { rmSync } from "node:fs";
import type { ScheduleControl, ScheduleRun, ScheduleStatus } from "../api/api-deps.js";
import type { Config } from "../config.js";
import { logger } from "../log.js";
import type { OrthancClient } from "../orthanc/rest.js";
import { previewPath } from "../pipeline/stages/preview.js";
import type { Ledger } from "../jobs/ledger.js";
import { reconcileSeries } from "./reconcile.js";

const log = logger("schedules");

export const ScheduleName = { Reconcile: "reconcile", Retry: "retry", Retention: "retention", OffPeak: "off-peak" } as const;
export type ScheduleName = (typeof ScheduleName)[keyof typeof ScheduleName];


export interface ScheduleDeps {
  config: Config;
  ledger: Ledger;
  orthanc: OrthancClient;
  /** Wakes the series watcher (after reconcile handed it series). */
  watchSeries: () => Promise<void>;
  /** Wakes the job queue (after jobs were queued). */
  notifyQueue: () => void;
}

interface Schedule {
  name: ScheduleName;
  description: string;
  cron: string;
  work: () => Promise<unknown>;
  task?: ScheduledTask;
  running?: Promise<ScheduleRun>;
  lastRun: ScheduleRun | null;
  runs: number;
}

export class Schedules implements ScheduleControl {
  private readonly schedules: Schedule[];

  constructor(private readonly deps: ScheduleDeps) {
    const { config } = deps;
    this.schedules = [
      {
        name: ScheduleName.Reconcile,
        description: "queue series that Orthanc holds but the change feed never reported, or that changed since",
        cron: config.schedules.reconcile,
        work: () => this.reconcile(),
        lastRun: null,
        runs: 0,
      },
      {
        name: ScheduleName.Retry,
        description: "queue retry-wait jobs whose retry time has come",
        cron: config.schedules.retry,
        work: async () => this.retry(),
        lastRun: null,
        runs: 0,
      },
      {
        name: ScheduleName.Retention,
        description: `delete finished job records older than ${config.schedules.retentionDays} days`,
        cron: config.schedules.retention,
        work: async () => this.retention(),
        lastRun: null,
        runs: 0,
      },
      {
        name: ScheduleName.OffPeak,
        description: "wake the job queue inside the off-peak window (off-peak jobs start only then)",
        cron: config.lanes.offPeakWindow,
        work: async () => {
          deps.notifyQueue();
          return { waitingOffPeak: deps.ledger.jobs.lanes.waiting(new Date())["off-peak"] };
        },
        lastRun: null,
        runs: 0,
      },
    ];
  }

  start(): void {
    for (const schedule of this.schedules) {
      if (schedule.cron === "off") continue;
      schedule.task = cron.schedule(schedule.cron, () => this.run(schedule.name).then(() => undefined), {
        name: `ct-enhance-${schedule.name}`,
        noOverlap: true,
      });
    }
    if (this.deps.config.schedules.reconcileAtStart) void this.run(ScheduleName.Reconcile);
  }

  async stop(): Promise<void> {
    for (const schedule of this.schedules) {
      await schedule.task?.destroy();
      schedule.task = undefined;
    }
    await Promise.all(this.schedules.map((s) => s.running));
  }

  has(name: string): boolean {
    return this.schedules.some((s) => s.name === name);
  }

  list(): ScheduleStatus[] {
    return this.schedules.map((s) => ({
      name: s.name,
      description: s.description,
      cron: s.cron,
      running: s.running !== undefined,
      nextRun: s.task?.getNextRun()?.toISOString() ?? null,
      lastRun: s.lastRun,
      runs: s.runs,
    }));
  }

  /** Runs a schedule now (or joins the run in progress); never throws: the outcome is in the answer. */
  run(name: string): Promise<ScheduleRun> {
    const schedule = this.schedules.find((s) => s.name === name);
    if (!schedule) throw new Error(`no schedule '${name}'`);
    if (schedule.running) return schedule.running;
    const startedAt = new Date().toISOString();
    schedule.lastRun = { startedAt, finishedAt: null, ok: null, summary: null };
    schedule.running = schedule.work().then(
      (summary) => ({ startedAt, finishedAt: new Date().toISOString(), ok: true, summary }),
      (error: unknown) => {
        log.warn("schedule run failed; it runs again at its next time", { schedule: name, error: (error as Error).message });
        return { startedAt, finishedAt: new Date().toISOString(), ok: false, summary: { error: (error as Error).message } };
      },
    ).then((run) => {
      schedule.lastRun = run;
      schedule.runs += 1;
      schedule.running = undefined;
      return run;
    });
    return schedule.running;
  }

  private async reconcile(): Promise<unknown> {
    const summary = await reconcileSeries(this.deps.orthanc, this.deps.ledger);
    if (summary.unseen.length + summary.changed.length > 0) await this.deps.watchSeries();
    return summary;
  }

  private retry(): unknown {
    const { jobs } = this.deps.ledger;
    const queued = jobs.dueRetries().filter((job) => jobs.retry(job.id, "retry time reached", false));
    if (queued.length > 0) this.deps.notifyQueue();
    return { queued: queued.map((job) => job.id) };
  }

  private retention(): unknown {
    const days = this.deps.config.schedules.retentionDays;
    const cutoff = new Date(Date.now() - days * 86_400_000);
    const jobs = this.deps.ledger.jobs.deleteFinishedBefore(cutoff);
    const decisions = this.deps.ledger.feed.deleteDecisionsBefore(cutoff);
    const notifications = this.deps.ledger.notifications.deleteSettledBefore(cutoff);
    for (const job of jobs) rmSync(previewPath(this.deps.config.dataDir, job.id), { force: true });
    if (jobs.length > 0) log.info("old job records deleted", { jobs: jobs.length, decisions, days });
    return { deletedJobs: jobs.map((job) => job.id), deletedDecisions: decisions, deletedNotifications: notifications, olderThanDays: days };
  }
}
