/**
 * The durable record of what the node saw and did (SQLite): the change-feed cursor, every series seen and the
 * decision taken for it, one job per (source series, pipeline, model version) with its state, stage, attempts,
 * error and output, an event timeline per job, and the series we wrote (so we never process our own output).
 */
import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import path from "node:path";

export const JobState = {
  Queued: "queued",
  Running: "running",
  /** Failed with a retryable error; runs again at nextRetryAt. */
  RetryWait: "retry-wait",
  Done: "done",
  Failed: "failed",
  Cancelled: "cancelled",
} as const;
export type JobState = (typeof JobState)[keyof typeof JobState];

export const WatchState = {
  /** Seen through NewSeries; waiting until Orthanc (or our own clock) says no more instances arrive. */
  AwaitingStable: "awaiting-stable",
  /** Stable and not yet looked at by the selection rules. */
  Stable: "stable",
  /** Selection ran: decisions recorded, jobs created. */
  Decided: "decided",
  /** Orthanc no longer has it. */
  Gone: "gone",
} as const;
export type WatchState = (typeof WatchState)[keyof typeof WatchState];

export interface Job {
  id: number;
  sourceOrthancId: string;
  sourceSeriesUid: string;
  studyUid: string;
  pipeline: string;
  modelId: string;
  modelVersion: string;
  /** 1 for the first run; a deliberate re-run increments it (and so gets new output UIDs). */
  run: number;
  state: JobState;
  stage: string | null;
  attempts: number;
  nextRetryAt: string | null;
  errorStage: string | null;
  errorMessage: string | null;
  errorRetryable: boolean | null;
  provider: string | null;
  slicesDone: number;
  slicesTotal: number;
  outputSeriesUid: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface JobEvent {
  at: string;
  kind: string;
  message: string;
}

export interface Decision {
  orthancSeriesId: string;
  seriesUid: string | null;
  pipeline: string | null;
  decision: "queued" | "skipped";
  reason: string;
  decidedAt: string;
}

export interface NewJob {
  sourceOrthancId: string;
  sourceSeriesUid: string;
  studyUid: string;
  pipeline: string;
  modelId: string;
  modelVersion: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS feed_cursor (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS watched_series (
  orthanc_id TEXT PRIMARY KEY, state TEXT NOT NULL, first_seen TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS decisions (
  id INTEGER PRIMARY KEY AUTOINCREMENT, orthanc_series_id TEXT NOT NULL, series_uid TEXT, pipeline TEXT,
  decision TEXT NOT NULL, reason TEXT NOT NULL, decided_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS decisions_series ON decisions (orthanc_series_id);
CREATE TABLE IF NOT EXISTS jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  source_orthanc_id TEXT NOT NULL, source_series_uid TEXT NOT NULL, study_uid TEXT NOT NULL,
  pipeline TEXT NOT NULL, model_id TEXT NOT NULL, model_version TEXT NOT NULL, run INTEGER NOT NULL DEFAULT 1,
  state TEXT NOT NULL, stage TEXT, attempts INTEGER NOT NULL DEFAULT 0, next_retry_at TEXT,
  error_stage TEXT, error_message TEXT, error_retryable INTEGER, provider TEXT,
  slices_done INTEGER NOT NULL DEFAULT 0, slices_total INTEGER NOT NULL DEFAULT 0, output_series_uid TEXT,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  UNIQUE (source_series_uid, pipeline, model_version));
CREATE TABLE IF NOT EXISTS job_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, job_id INTEGER NOT NULL REFERENCES jobs(id), at TEXT NOT NULL,
  kind TEXT NOT NULL, message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS job_events_job ON job_events (job_id);
CREATE TABLE IF NOT EXISTS output_series (series_uid TEXT PRIMARY KEY, job_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS stage_timings (
  id INTEGER PRIMARY KEY AUTOINCREMENT, job_id INTEGER NOT NULL, stage TEXT NOT NULL, provider TEXT,
  seconds REAL NOT NULL, at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS stage_timings_stage ON stage_timings (stage);
`;

/** Seconds a stage took, summed up for /metrics (a Prometheus histogram). */
export interface StageTimingStats {
  stage: string;
  provider: string | null;
  count: number;
  sumSeconds: number;
  /** Cumulative counts per upper bound (seconds), in the order of the bounds asked for. */
  buckets: number[];
}

type Row = Record<string, unknown>;

function toJob(row: Row): Job {
  return {
    id: row.id as number,
    sourceOrthancId: row.source_orthanc_id as string,
    sourceSeriesUid: row.source_series_uid as string,
    studyUid: row.study_uid as string,
    pipeline: row.pipeline as string,
    modelId: row.model_id as string,
    modelVersion: row.model_version as string,
    run: row.run as number,
    state: row.state as JobState,
    stage: row.stage as string | null,
    attempts: row.attempts as number,
    nextRetryAt: row.next_retry_at as string | null,
    errorStage: row.error_stage as string | null,
    errorMessage: row.error_message as string | null,
    errorRetryable: row.error_retryable === null ? null : Boolean(row.error_retryable),
    provider: row.provider as string | null,
    slicesDone: row.slices_done as number,
    slicesTotal: row.slices_total as number,
    outputSeriesUid: row.output_series_uid as string | null,
    createdAt: row.created_at as string,
    updatedAt: row.updated_at as string,
  };
}

const now = (): string => new Date().toISOString();

export class Ledger {
  private readonly db: Database.Database;
  /** The stage each running job is in and since when (ms), to record how long it took when it ends. */
  private readonly openStages = new Map<number, { stage: string; since: number }>();

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true });
    this.db = new Database(path.join(dataDir, "ct-enhance.sqlite"));
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.exec(SCHEMA);
  }

  close(): void {
    this.db.close();
  }

  // --- change feed -------------------------------------------------------------------------------------------------

  cursor(): number {
    const row = this.db.prepare("SELECT seq FROM feed_cursor WHERE id = 1").get() as Row | undefined;
    return (row?.seq as number | undefined) ?? 0;
  }

  setCursor(seq: number): void {
    this.db.prepare("INSERT INTO feed_cursor (id, seq) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET seq = excluded.seq").run(seq);
  }

  /** Records series events and the new cursor in one transaction, so a crash never skips or half-applies a page. */
  recordChanges(series: { orthancId: string; stable: boolean }[], cursor: number): void {
    const upsert = this.db.prepare(`
      INSERT INTO watched_series (orthanc_id, state, first_seen, updated_at) VALUES (@id, @state, @now, @now)
      ON CONFLICT(orthanc_id) DO UPDATE SET
        state = CASE WHEN @state = 'stable' THEN 'stable'
                     WHEN watched_series.state IN ('decided', 'gone') THEN 'awaiting-stable'
                     ELSE watched_series.state END,
        updated_at = @now`);
    this.db.transaction(() => {
      for (const s of series) {
        upsert.run({ id: s.orthancId, state: s.stable ? WatchState.Stable : WatchState.AwaitingStable, now: now() });
      }
      this.setCursor(cursor);
    })();
  }

  watchedSeries(state: WatchState): string[] {
    return (this.db.prepare("SELECT orthanc_id FROM watched_series WHERE state = ? ORDER BY updated_at").all(state) as Row[])
      .map((row) => row.orthanc_id as string);
  }

  setWatchState(orthancId: string, state: WatchState): void {
    this.db.prepare(`
      INSERT INTO watched_series (orthanc_id, state, first_seen, updated_at) VALUES (?, ?, ?, ?)
      ON CONFLICT(orthanc_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`)
      .run(orthancId, state, now(), now());
  }

  // --- decisions ---------------------------------------------------------------------------------------------------

  recordDecision(decision: Omit<Decision, "decidedAt">): void {
    this.db.prepare(`INSERT INTO decisions (orthanc_series_id, series_uid, pipeline, decision, reason, decided_at)
      VALUES (?, ?, ?, ?, ?, ?)`)
      .run(decision.orthancSeriesId, decision.seriesUid, decision.pipeline, decision.decision, decision.reason, now());
  }

  decisions(filter: { orthancSeriesId?: string; seriesUid?: string } = {}): Decision[] {
    const rows = this.db.prepare(`SELECT * FROM decisions
      WHERE (@orthancId IS NULL OR orthanc_series_id = @orthancId) AND (@uid IS NULL OR series_uid = @uid)
      ORDER BY id`).all({ orthancId: filter.orthancSeriesId ?? null, uid: filter.seriesUid ?? null }) as Row[];
    return rows.map((row) => ({
      orthancSeriesId: row.orthanc_series_id as string,
      seriesUid: row.series_uid as string | null,
      pipeline: row.pipeline as string | null,
      decision: row.decision as Decision["decision"],
      reason: row.reason as string,
      decidedAt: row.decided_at as string,
    }));
  }

  // --- jobs --------------------------------------------------------------------------------------------------------

  /** The job for this key, if one exists. */
  findJob(sourceSeriesUid: string, pipeline: string, modelVersion: string): Job | undefined {
    const row = this.db.prepare("SELECT * FROM jobs WHERE source_series_uid = ? AND pipeline = ? AND model_version = ?")
      .get(sourceSeriesUid, pipeline, modelVersion) as Row | undefined;
    return row ? toJob(row) : undefined;
  }

  /** Creates the job for this key, or returns the existing one unchanged (created = false). */
  createJob(job: NewJob): { job: Job; created: boolean } {
    const existing = this.findJob(job.sourceSeriesUid, job.pipeline, job.modelVersion);
    if (existing) return { job: existing, created: false };
    const at = now();
    const id = this.db.prepare(`INSERT INTO jobs (source_orthanc_id, source_series_uid, study_uid, pipeline, model_id,
      model_version, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(job.sourceOrthancId, job.sourceSeriesUid, job.studyUid, job.pipeline, job.modelId, job.modelVersion,
        JobState.Queued, at, at).lastInsertRowid as number;
    this.addEvent(id, "queued", `queued for pipeline ${job.pipeline} (model ${job.modelId} ${job.modelVersion})`);
    return { job: this.job(id)!, created: true };
  }

  /** A deliberate re-run: same job, next run number (new output UIDs), back to queued. */
  requeue(id: number, reason: string): Job {
    this.db.prepare(`UPDATE jobs SET run = run + 1, state = ?, stage = NULL, attempts = 0, next_retry_at = NULL,
      error_stage = NULL, error_message = NULL, error_retryable = NULL, slices_done = 0, output_series_uid = NULL,
      updated_at = ? WHERE id = ?`).run(JobState.Queued, now(), id);
    this.addEvent(id, "requeued", reason);
    return this.job(id)!;
  }

  job(id: number): Job | undefined {
    const row = this.db.prepare("SELECT * FROM jobs WHERE id = ?").get(id) as Row | undefined;
    return row ? toJob(row) : undefined;
  }

  jobs(filter: { state?: JobState; sourceSeriesUid?: string } = {}): Job[] {
    return (this.db.prepare(`SELECT * FROM jobs WHERE (@state IS NULL OR state = @state)
      AND (@uid IS NULL OR source_series_uid = @uid) ORDER BY id`)
      .all({ state: filter.state ?? null, uid: filter.sourceSeriesUid ?? null }) as Row[]).map(toJob);
  }

  /** The next job to run: queued ones first, then retries that are due. */
  nextRunnableJob(at: Date = new Date()): Job | undefined {
    const row = this.db.prepare(`SELECT * FROM jobs WHERE state = 'queued'
      OR (state = 'retry-wait' AND next_retry_at <= ?) ORDER BY state = 'retry-wait', id LIMIT 1`)
      .get(at.toISOString()) as Row | undefined;
    return row ? toJob(row) : undefined;
  }

  /** Jobs left 'running' by a process that died: they go back to the queue. */
  recoverInterruptedJobs(): Job[] {
    const interrupted = this.jobs({ state: JobState.Running });
    for (const job of interrupted) {
      this.db.prepare("UPDATE jobs SET state = ?, updated_at = ? WHERE id = ?").run(JobState.Queued, now(), job.id);
      this.addEvent(job.id, "recovered", `the service stopped during stage ${job.stage ?? "?"}; queued again`);
    }
    return interrupted;
  }

  startJob(id: number): void {
    this.db.prepare(`UPDATE jobs SET state = ?, attempts = attempts + 1, error_stage = NULL, error_message = NULL,
      error_retryable = NULL, updated_at = ? WHERE id = ?`).run(JobState.Running, now(), id);
    this.addEvent(id, "started", `attempt ${this.job(id)?.attempts ?? "?"}`);
  }

  setStage(id: number, stage: string): void {
    this.closeStage(id);
    this.openStages.set(id, { stage, since: performance.now() });
    this.db.prepare("UPDATE jobs SET stage = ?, updated_at = ? WHERE id = ?").run(stage, now(), id);
    this.addEvent(id, "stage", stage);
  }

  /** Records how long the job's current stage took (with the provider, for infer). */
  private closeStage(id: number): void {
    const open = this.openStages.get(id);
    if (!open) return;
    this.openStages.delete(id);
    const provider = (this.db.prepare("SELECT provider FROM jobs WHERE id = ?").get(id) as Row | undefined)?.provider;
    this.db.prepare("INSERT INTO stage_timings (job_id, stage, provider, seconds, at) VALUES (?, ?, ?, ?, ?)")
      .run(id, open.stage, (provider as string | null | undefined) ?? null, (performance.now() - open.since) / 1000, now());
  }

  setProgress(id: number, slicesDone: number, slicesTotal: number): void {
    this.db.prepare("UPDATE jobs SET slices_done = ?, slices_total = ?, updated_at = ? WHERE id = ?")
      .run(slicesDone, slicesTotal, now(), id);
  }

  setProvider(id: number, provider: string): void {
    this.db.prepare("UPDATE jobs SET provider = ?, updated_at = ? WHERE id = ?").run(provider, now(), id);
  }

  /** Remembers an output series before it is stored, so its own NewSeries event is recognised as ours. */
  recordOutputSeries(id: number, seriesUid: string, options: { primary: boolean } = { primary: true }): void {
    this.db.transaction(() => {
      this.db.prepare("INSERT OR IGNORE INTO output_series (series_uid, job_id) VALUES (?, ?)").run(seriesUid, id);
      if (options.primary) {
        this.db.prepare("UPDATE jobs SET output_series_uid = ?, updated_at = ? WHERE id = ?").run(seriesUid, now(), id);
      }
    })();
  }

  isOutputSeries(seriesUid: string): boolean {
    return this.db.prepare("SELECT 1 FROM output_series WHERE series_uid = ?").get(seriesUid) !== undefined;
  }

  finishJob(id: number, message: string): void {
    this.closeStage(id);
    this.db.prepare("UPDATE jobs SET state = ?, stage = NULL, next_retry_at = NULL, updated_at = ? WHERE id = ?")
      .run(JobState.Done, now(), id);
    this.addEvent(id, "done", message);
  }

  failJob(id: number, error: { stage: string; message: string; retryable: boolean }, nextRetryAt: Date | null): void {
    this.closeStage(id);
    const state = nextRetryAt ? JobState.RetryWait : JobState.Failed;
    this.db.prepare(`UPDATE jobs SET state = ?, error_stage = ?, error_message = ?, error_retryable = ?,
      next_retry_at = ?, updated_at = ? WHERE id = ?`)
      .run(state, error.stage, error.message, error.retryable ? 1 : 0, nextRetryAt?.toISOString() ?? null, now(), id);
    const retry = nextRetryAt ? `; retry at ${nextRetryAt.toISOString()}` : "";
    this.addEvent(id, state, `${error.stage}: ${error.message}${retry}`);
  }

  addEvent(id: number, kind: string, message: string): void {
    this.db.prepare("INSERT INTO job_events (job_id, at, kind, message) VALUES (?, ?, ?, ?)").run(id, now(), kind, message);
  }

  events(id: number): JobEvent[] {
    return this.db.prepare("SELECT at, kind, message FROM job_events WHERE job_id = ? ORDER BY id").all(id) as JobEvent[];
  }

  // --- operator actions, schedules, metrics ------------------------------------------------------------------------

  /** Cancels a job that waits (queued or retry-wait); answers the job unchanged if it is in another state. */
  cancelJob(id: number, reason: string): { job: Job | undefined; cancelled: boolean } {
    const changed = this.db.prepare(`UPDATE jobs SET state = ?, next_retry_at = NULL, updated_at = ?
      WHERE id = ? AND state IN ('queued', 'retry-wait')`).run(JobState.Cancelled, now(), id).changes;
    if (changed > 0) this.addEvent(id, "cancelled", reason);
    return { job: this.job(id), cancelled: changed > 0 };
  }

  /**
   * Queues a failed, cancelled or retry-wait job again now, same run (same output UIDs: a store that half happened
   * lands on the same instances). Attempts start again from zero when a person asks.
   */
  retryJob(id: number, reason: string, resetAttempts: boolean): { job: Job | undefined; queued: boolean } {
    const changed = this.db.prepare(`UPDATE jobs SET state = ?, next_retry_at = NULL,
      attempts = CASE WHEN ? THEN 0 ELSE attempts END, updated_at = ?
      WHERE id = ? AND state IN ('failed', 'cancelled', 'retry-wait')`)
      .run(JobState.Queued, resetAttempts ? 1 : 0, now(), id).changes;
    if (changed > 0) this.addEvent(id, "retry", reason);
    return { job: this.job(id), queued: changed > 0 };
  }

  /** retry-wait jobs whose next retry time has come. */
  dueRetries(at: Date = new Date()): Job[] {
    return (this.db.prepare("SELECT * FROM jobs WHERE state = 'retry-wait' AND next_retry_at <= ? ORDER BY id")
      .all(at.toISOString()) as Row[]).map(toJob);
  }

  /**
   * Retention: deletes finished jobs (done, failed, cancelled) last updated before `before`, with their timelines and
   * timings, and decisions older than that. Output series stay known (we must never process our own output).
   */
  deleteFinishedJobsBefore(before: Date): { jobs: Job[]; decisions: number } {
    const cutoff = before.toISOString();
    return this.db.transaction(() => {
      const jobs = (this.db.prepare(`SELECT * FROM jobs WHERE state IN ('done', 'failed', 'cancelled') AND updated_at < ?`)
        .all(cutoff) as Row[]).map(toJob);
      const deleteEvents = this.db.prepare("DELETE FROM job_events WHERE job_id = ?");
      const deleteTimings = this.db.prepare("DELETE FROM stage_timings WHERE job_id = ?");
      const deleteJob = this.db.prepare("DELETE FROM jobs WHERE id = ?");
      for (const job of jobs) {
        deleteEvents.run(job.id);
        deleteTimings.run(job.id);
        deleteJob.run(job.id);
      }
      const decisions = this.db.prepare("DELETE FROM decisions WHERE decided_at < ?").run(cutoff).changes;
      return { jobs, decisions };
    })();
  }

  /** Every series the ledger has watched, with its state and when that last changed. */
  watchedSeriesRecords(): { orthancId: string; state: WatchState; updatedAt: string }[] {
    return (this.db.prepare("SELECT orthanc_id, state, updated_at FROM watched_series").all() as Row[]).map((row) => ({
      orthancId: row.orthanc_id as string,
      state: row.state as WatchState,
      updatedAt: row.updated_at as string,
    }));
  }

  jobCountsByState(): Record<JobState, number> {
    const counts = Object.fromEntries(Object.values(JobState).map((state) => [state, 0])) as Record<JobState, number>;
    for (const row of this.db.prepare("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state").all() as Row[]) {
      counts[row.state as JobState] = row.n as number;
    }
    return counts;
  }

  /** Jobs waiting to run now: queued ones and retries that are due. */
  queueDepth(at: Date = new Date()): number {
    const row = this.db.prepare(`SELECT COUNT(*) AS n FROM jobs WHERE state = 'queued'
      OR (state = 'retry-wait' AND next_retry_at <= ?)`).get(at.toISOString()) as Row;
    return row.n as number;
  }

  /** Stage durations per stage (and provider), with cumulative counts for the given upper bounds in seconds. */
  stageTimingStats(bounds: number[]): StageTimingStats[] {
    const bucketColumns = bounds.map((_, i) => `SUM(CASE WHEN seconds <= @b${i} THEN 1 ELSE 0 END) AS b${i}`).join(", ");
    const parameters = Object.fromEntries(bounds.map((bound, i) => [`b${i}`, bound]));
    const rows = this.db.prepare(`SELECT stage, provider, COUNT(*) AS n, SUM(seconds) AS total${bucketColumns ? `, ${bucketColumns}` : ""}
      FROM stage_timings GROUP BY stage, provider ORDER BY stage, provider`).all(parameters) as Row[];
    return rows.map((row) => ({
      stage: row.stage as string,
      provider: row.provider as string | null,
      count: row.n as number,
      sumSeconds: row.total as number,
      buckets: bounds.map((_, i) => row[`b${i}`] as number),
    }));
  }
}
