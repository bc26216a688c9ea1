/**
 * One job per (source series, pipeline, model version), with its state, stage, attempts, error and outputs, and an
 * event timeline an operator reads. A job changes state only through `transition`, along the edges of JOB_STATES'
 * graph, in one statement that also checks the state it leaves: two callers racing for one job cannot both win.
 */
import type Database from "better-sqlite3";
import { LaneQueue } from "./lane-queue.js";
import { Lane } from "./lanes.js";

export const JobState = {
  Queued: "queued",
  Running: "running",
  /** Failed with a retryable error; runs again at nextRetryAt. */
  RetryWait: "retry-wait",
  Done: "done",
  Failed: "failed",
  Cancelled: "cancelled",
  /** The series is outside the model's intended use (measured): nothing was run. */
  Skipped: "skipped",
  /** The model's output failed its checks: nothing was stored. */
  Rejected: "rejected",
} as const;
export type JobState = (typeof JobState)[keyof typeof JobState];

/** Where each state may go. Queued again from a finished state is a new attempt (retry) or a new run (re-run). */
export const JOB_STATES: Record<JobState, readonly JobState[]> = {
  [JobState.Queued]: [JobState.Running, JobState.Cancelled],
  [JobState.Running]: [JobState.Done, JobState.Failed, JobState.RetryWait, JobState.Skipped, JobState.Rejected, JobState.Queued /* the service died */],
  [JobState.RetryWait]: [JobState.Running, JobState.Queued, JobState.Cancelled],
  [JobState.Done]: [JobState.Queued],
  [JobState.Failed]: [JobState.Queued],
  [JobState.Cancelled]: [JobState.Queued],
  [JobState.Skipped]: [JobState.Queued],
  [JobState.Rejected]: [JobState.Queued],
};

/** States a job no longer runs from by itself. */
export const FINISHED_STATES: readonly JobState[] = [JobState.Done, JobState.Failed, JobState.Cancelled, JobState.Skipped, JobState.Rejected];

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
  /** A person asked to run it whatever the rules, intended use and output checks say (the DICOM then says so). */
  forced: boolean;
  /** urgent, routine or off-peak (lanes.ts): the order jobs start in. */
  lane: Lane;
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
  /** The worker that ran the last attempt (distributed mode), null in the embedded mode. */
  worker: string | null;
  createdAt: string;
  updatedAt: string;
}

export type NewJob = Pick<Job, "sourceOrthancId" | "sourceSeriesUid" | "studyUid" | "pipeline" | "modelId" | "modelVersion">;

export interface JobEvent {
  at: string;
  kind: string;
  message: string;
}

export interface JobError {
  stage: string;
  message: string;
  retryable: boolean;
}

/** What a transition may change besides the state; anything not named keeps its value. */
export interface TransitionChanges {
  /** "next": a new attempt (attempts + 1); "reset": a person asked, attempts start again from zero. */
  attempts?: "next" | "reset";
  /** A deliberate re-run: run + 1, progress and output cleared (new output UIDs). */
  newRun?: boolean;
  /** Whether the run is forced past the rules, intended use and output checks. */
  forced?: boolean;
  /** The lane it waits in from now on. */
  lane?: Lane;
  stage?: string | null;
  nextRetryAt?: Date | null;
  /** The failure to record, or null to clear the last one. */
  error?: JobError | null;
}

type Row = Record<string, unknown>;
const now = (): string => new Date().toISOString();

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
    forced: Boolean(row.forced),
    lane: row.lane as Lane,
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
    worker: (row.worker as string | null | undefined) ?? null,
    createdAt: row.created_at as string,
    updatedAt: row.updated_at as string,
  };
}

/** The SET clauses and parameters of a transition's changes. */
function assignments(changes: TransitionChanges): { sql: string[]; values: Record<string, unknown> } {
  const sql: string[] = [];
  const values: Record<string, unknown> = {};
  if (changes.attempts === "next") sql.push("attempts = attempts + 1");
  if (changes.attempts === "reset") sql.push("attempts = 0");
  if (changes.newRun) sql.push("run = run + 1", "slices_done = 0", "output_series_uid = NULL");
  if (changes.forced !== undefined) {
    sql.push("forced = @forced");
    values.forced = changes.forced ? 1 : 0;
  }
  if (changes.lane !== undefined) {
    sql.push("lane = @lane");
    values.lane = changes.lane;
  }
  if (changes.stage !== undefined) {
    sql.push("stage = @stage");
    values.stage = changes.stage;
  }
  if (changes.nextRetryAt !== undefined) {
    sql.push("next_retry_at = @nextRetryAt");
    values.nextRetryAt = changes.nextRetryAt?.toISOString() ?? null;
  }
  if (changes.error !== undefined) {
    sql.push("error_stage = @errorStage", "error_message = @errorMessage", "error_retryable = @errorRetryable");
    values.errorStage = changes.error?.stage ?? null;
    values.errorMessage = changes.error?.message ?? null;
    values.errorRetryable = changes.error ? (changes.error.retryable ? 1 : 0) : null;
  }
  return { sql, values };
}

export class JobRecords {
  /** The lanes' counts and the pick of the next job (lane-queue.ts); its offPeakWindow is set by the service. */
  readonly lanes: LaneQueue;

  constructor(private readonly db: Database.Database) {
    this.lanes = new LaneQueue(db);
  }

  /** The job for this key, if one exists. */
  find(sourceSeriesUid: string, pipeline: string, modelVersion: string): Job | undefined {
    const row = this.db.prepare("SELECT * FROM jobs WHERE source_series_uid = ? AND pipeline = ? AND model_version = ?")
      .get(sourceSeriesUid, pipeline, modelVersion) as Row | undefined;
    return row ? toJob(row) : undefined;
  }

  /** Creates the job for this key, or returns the existing one unchanged (created = false). */
  create(job: NewJob, options: { forced?: boolean; lane?: Lane; laneReason?: string } = {}): { job: Job; created: boolean } {
    const existing = this.find(job.sourceSeriesUid, job.pipeline, job.modelVersion);
    if (existing) return { job: existing, created: false };
    const at = now();
    const lane = options.lane ?? Lane.Routine;
    const id = this.db.prepare(`INSERT INTO jobs (source_orthanc_id, source_series_uid, study_uid, pipeline, model_id,
      model_version, state, forced, lane, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(job.sourceOrthancId, job.sourceSeriesUid, job.studyUid, job.pipeline, job.modelId, job.modelVersion,
        JobState.Queued, options.forced ? 1 : 0, lane, at, at).lastInsertRowid as number;
    this.addEvent(id, "queued", `queued for pipeline ${job.pipeline} (model ${job.modelId} ${job.modelVersion}) in the ` +
      `${lane} lane${options.laneReason ? ` (${options.laneReason})` : ""}` +
      (options.forced ? ", forced past the rules, intended use and output checks" : ""));
    return { job: this.get(id)!, created: true };
  }

  get(id: number): Job | undefined {
    const row = this.db.prepare("SELECT * FROM jobs WHERE id = ?").get(id) as Row | undefined;
    return row ? toJob(row) : undefined;
  }

  list(filter: { state?: JobState; sourceSeriesUid?: string } = {}): Job[] {
    return (this.db.prepare(`SELECT * FROM jobs WHERE (@state IS NULL OR state = @state)
      AND (@uid IS NULL OR source_series_uid = @uid) ORDER BY id`)
      .all({ state: filter.state ?? null, uid: filter.sourceSeriesUid ?? null }) as Row[]).map(toJob);
  }

  /**
   * Moves job `id` from one of the states `from` to `to`, with `changes`, and records `event` in its timeline, all
   * or nothing. Answers false when the job is in none of the `from` states (nothing changes then). A transition the
   * state graph does not have is a defect and throws.
   */
  transition(
    id: number,
    from: readonly JobState[],
    to: JobState,
    event: Omit<JobEvent, "at">,
    changes: TransitionChanges = {},
  ): boolean {
    const illegal = from.filter((state) => !JOB_STATES[state].includes(to));
    if (illegal.length > 0) throw new Error(`job state graph has no edge ${illegal.join("|")} -> ${to}`);
    const { sql, values } = assignments(changes);
    const placeholders = from.map((_, i) => `@from${i}`).join(", ");
    return this.db.transaction(() => {
      const changed = this.db.prepare(`UPDATE jobs SET ${["state = @to", "updated_at = @now", ...sql].join(", ")}
        WHERE id = @id AND state IN (${placeholders})`)
        .run({ ...values, ...Object.fromEntries(from.map((state, i) => [`from${i}`, state])), to, now: now(), id }).changes;
      if (changed > 0) this.addEvent(id, event.kind, event.message);
      return changed > 0;
    })();
  }

  // --- the transitions the service makes -------------------------------------------------------------------------

  /** A queued job, or a retry whose time has come, starts its next attempt; false when it was not waiting. */
  start(id: number): boolean {
    const attempt = (this.get(id)?.attempts ?? 0) + 1;
    return this.transition(id, [JobState.Queued, JobState.RetryWait], JobState.Running,
      { kind: "started", message: `attempt ${attempt}` }, { attempts: "next", error: null, stage: null });
  }

  finish(id: number, message: string): boolean {
    return this.transition(id, [JobState.Running], JobState.Done, { kind: "done", message }, { stage: null, nextRetryAt: null });
  }

  /** The attempt failed: retry-wait until `nextRetryAt`, or failed for good when there is none. */
  fail(id: number, error: JobError, nextRetryAt: Date | null): boolean {
    const to = nextRetryAt ? JobState.RetryWait : JobState.Failed;
    const retry = nextRetryAt ? `; retry at ${nextRetryAt.toISOString()}` : "";
    return this.transition(id, [JobState.Running], to, { kind: to, message: `${error.stage}: ${error.message}${retry}` },
      { error, nextRetryAt });
  }

  /** The series is outside the model's intended use: nothing runs, the reasons are kept. */
  skip(id: number, reasons: string): boolean {
    return this.transition(id, [JobState.Running], JobState.Skipped, { kind: JobState.Skipped, message: reasons },
      { stage: null, nextRetryAt: null, error: { stage: "probe", message: reasons, retryable: false } });
  }

  /** The output failed its checks: nothing was stored; the measured figures and limits are kept. */
  reject(id: number, verdicts: string): boolean {
    return this.transition(id, [JobState.Running], JobState.Rejected, { kind: JobState.Rejected, message: verdicts },
      { stage: null, nextRetryAt: null, error: { stage: "check", message: verdicts, retryable: false } });
  }

  /** Jobs left running by a process that died go back to the queue; returns them. */
  recoverInterrupted(): Job[] {
    const interrupted = this.list({ state: JobState.Running });
    for (const job of interrupted) {
      this.transition(job.id, [JobState.Running], JobState.Queued,
        { kind: "recovered", message: `the service stopped during stage ${job.stage ?? "?"}; queued again` });
    }
    return interrupted;
  }

  // --- the transitions an operator asks for ----------------------------------------------------------------------

  /** Cancels a job that waits (queued or retry-wait); false when it is in another state. */
  cancel(id: number, reason: string): boolean {
    return this.transition(id, [JobState.Queued, JobState.RetryWait], JobState.Cancelled,
      { kind: "cancelled", message: reason }, { nextRetryAt: null });
  }

  /**
   * Queues a failed, cancelled or retry-wait job again now, same run (same output UIDs: a store that half happened
   * lands on the same instances). Attempts start again from zero when a person asks.
   */
  retry(id: number, reason: string, resetAttempts: boolean): boolean {
    return this.transition(id, [JobState.Failed, JobState.Cancelled, JobState.RetryWait], JobState.Queued,
      { kind: "retry", message: reason }, { nextRetryAt: null, ...(resetAttempts ? { attempts: "reset" } : {}) });
  }

  /**
   * A deliberate re-run of a job that is not waiting or running: next run number (new output UIDs), queued; forced or
   * not, as the person asked.
   */
  requeue(id: number, reason: string, forced = false, lane?: Lane): boolean {
    return this.transition(id, [JobState.Done, JobState.Failed, JobState.Cancelled, JobState.RetryWait, JobState.Skipped, JobState.Rejected],
      JobState.Queued, { kind: "requeued", message: lane ? `${reason}; ${lane} lane` : reason },
      { newRun: true, attempts: "reset", stage: null, nextRetryAt: null, error: null, forced, ...(lane ? { lane } : {}) });
  }

  /**
   * The next job to run, by the lane rule (lanes.ts): urgent first, a routine job after every URGENT_STREAK urgent
   * starts in a row, off-peak only inside its window; in a lane queued ones first, then retries that are due.
   */
  next(at: Date = new Date()): Job | undefined {
    const id = this.lanes.nextId(at);
    return id === undefined ? undefined : this.get(id);
  }

  /** retry-wait jobs whose next retry time has come. */
  dueRetries(at: Date = new Date()): Job[] {
    return (this.db.prepare("SELECT * FROM jobs WHERE state = ? AND next_retry_at <= ? ORDER BY id")
      .all(JobState.RetryWait, at.toISOString()) as Row[]).map(toJob);
  }

  /** Jobs waiting to run now: queued ones and retries that are due. */
  queueDepth(at: Date = new Date()): number {
    const row = this.db.prepare(`SELECT COUNT(*) AS n FROM jobs WHERE state = ? OR (state = ? AND next_retry_at <= ?)`)
      .get(JobState.Queued, JobState.RetryWait, at.toISOString()) as Row;
    return row.n as number;
  }

  countsByState(): Record<JobState, number> {
    const counts = Object.fromEntries(Object.values(JobState).map((state) => [state, 0])) as Record<JobState, number>;
    for (const row of this.db.prepare("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state").all() as Row[]) {
      counts[row.state as JobState] = row.n as number;
    }
    return counts;
  }

  /** A queued job, made to run past the rules, intended use and output checks (no state change). */
  forceQueued(id: number, reason: string): boolean {
    const changed = this.db.prepare("UPDATE jobs SET forced = 1, updated_at = ? WHERE id = ? AND state = ?").run(now(), id, JobState.Queued).changes;
    if (changed > 0) this.addEvent(id, "forced", reason);
    return changed > 0;
  }

  // --- what a running job reports (no state change) ----------------------------------------------------------------

  setStage(id: number, stage: string): void {
    this.db.prepare("UPDATE jobs SET stage = ?, updated_at = ? WHERE id = ?").run(stage, now(), id);
    this.addEvent(id, "stage", stage);
  }

  setProgress(id: number, slicesDone: number, slicesTotal: number): void {
    this.db.prepare("UPDATE jobs SET slices_done = ?, slices_total = ?, updated_at = ? WHERE id = ?")
      .run(slicesDone, slicesTotal, now(), id);
  }

  setProvider(id: number, provider: string): void {
    this.db.prepare("UPDATE jobs SET provider = ?, updated_at = ? WHERE id = ?").run(provider, now(), id);
  }

  /**
   * Remembers the job's output series before they are stored, so their own NewSeries events are recognised as ours;
   * the first is the job's main output (outputSeriesUid).
   */
  recordOutputSeries(id: number, seriesUids: readonly string[]): void {
    this.db.transaction(() => {
      const insert = this.db.prepare("INSERT OR IGNORE INTO output_series (series_uid, job_id) VALUES (?, ?)");
      for (const uid of seriesUids) insert.run(uid, id);
      this.db.prepare("UPDATE jobs SET output_series_uid = ?, updated_at = ? WHERE id = ?").run(seriesUids[0] ?? null, now(), id);
    })();
  }

  /** Whether a job of this node wrote this series (output series are remembered even after retention). */
  isOutputSeries(seriesUid: string): boolean {
    return this.db.prepare("SELECT 1 FROM output_series WHERE series_uid = ?").get(seriesUid) !== undefined;
  }

  addEvent(id: number, kind: string, message: string): void {
    this.db.prepare("INSERT INTO job_events (job_id, at, kind, message) VALUES (?, ?, ?, ?)").run(id, now(), kind, message);
  }

  events(id: number): JobEvent[] {
    return this.db.prepare("SELECT at, kind, message FROM job_events WHERE job_id = ? ORDER BY id").all(id) as JobEvent[];
  }

  /** Retention: deletes finished jobs last updated before `before`, with their timelines; returns them. */
  deleteFinishedBefore(before: Date): Job[] {
    return this.db.transaction(() => {
      const finished = Object.fromEntries(FINISHED_STATES.map((state, i) => [`s${i}`, state]));
      const jobs = (this.db.prepare(`SELECT * FROM jobs WHERE state IN (${Object.keys(finished).map((k) => `@${k}`).join(", ")})
        AND updated_at < @cutoff`).all({ ...finished, cutoff: before.toISOString() }) as Row[]).map(toJob);
      const deleteEvents = this.db.prepare("DELETE FROM job_events WHERE job_id = ?");
      const deleteJob = this.db.prepare("DELETE FROM jobs WHERE id = ?");
      for (const job of jobs) {
        deleteEvents.run(job.id);
        deleteJob.run(job.id);
      }
      return jobs;
    })();
  }
}
