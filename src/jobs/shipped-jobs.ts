/**
 * A job's record carried between processes (distributed mode, README "Scaling out"): the follower's ledger is the one
 * durable record; a worker runs the attempt against a ledger in its own memory, seeded with the job's row, and ships
 * back what the attempt wrote there (the end state, timeline, output series, stage durations, decisions and the result
 * notification). The follower applies it in one transaction, once: only onto the attempt it dispatched, still running,
 * so a result that comes twice (a redelivered event and the sweep) or late (an attempt already given up) changes
 * nothing. Progress reports (stage, slices, provider, worker) are applied the same way, best effort.
 */
import type Database from "better-sqlite3";
import type { Decision, FeedRecords } from "./feed-records.js";
import { type Job, type JobEvent, type JobRecords, JOB_STATES, JobState } from "./job-records.js";
import type { NotificationEvent } from "../notify/result-notification.js";
import type { ResultNotifications } from "./result-notifications.js";
import type { StageDurations, StageDurationStats } from "./stage-durations.js";

/** The fields of a job row an attempt changes. */
export type AttemptFields = Pick<Job, "state" | "stage" | "nextRetryAt" | "errorStage" | "errorMessage" | "errorRetryable" |
  "provider" | "slicesDone" | "slicesTotal" | "outputSeriesUid">;

/** Where a running attempt is, as its worker reports it. */
export interface AttemptProgress {
  stage: string | null;
  slicesDone: number;
  slicesTotal: number;
  provider: string | null;
}

/** What one attempt wrote in its worker's ledger: everything the follower's ledger needs to show it. */
export interface ShippedJobRecord {
  jobId: number;
  /** The attempt's number (the job's `attempts` once it started): the follower applies it only to that attempt. */
  attempt: number;
  worker: string;
  job: AttemptFields;
  events: JobEvent[];
  outputSeries: string[];
  stageDurations: StageDurationStats[];
  decisions: Omit<Decision, "decidedAt">[];
  notifications: { event: NotificationEvent; state: string; body: string }[];
}

type Row = Record<string, unknown>;

export class ShippedJobs {
  constructor(
    private readonly db: Database.Database,
    private readonly jobs: JobRecords,
    private readonly stageDurations: StageDurations,
    private readonly feed: FeedRecords,
    private readonly notifications: ResultNotifications,
  ) {}

  // --- in the worker's ledger (in memory, one job) ------------------------------------------------------------------

  /**
   * Writes the dispatched job's row as it stands in the follower's ledger, but waiting (queued, one attempt fewer), so
   * the runner's own `start` begins the same attempt: the runner runs unchanged.
   */
  seed(job: Job): void {
    this.db.prepare(`INSERT INTO jobs (id, source_orthanc_id, source_series_uid, study_uid, pipeline, model_id, model_version,
      run, forced, lane, state, attempts, slices_done, slices_total, output_series_uid, worker, created_at, updated_at)
      VALUES (@id, @sourceOrthancId, @sourceSeriesUid, @studyUid, @pipeline, @modelId, @modelVersion, @run, @forced, @lane, @state,
      @attempts, @slicesDone, @slicesTotal, @outputSeriesUid, @worker, @createdAt, @updatedAt)`)
      .run({ ...job, forced: job.forced ? 1 : 0, state: JobState.Queued, attempts: Math.max(0, job.attempts - 1) });
  }

  /** The attempt as this ledger holds it, for the follower. */
  record(jobId: number, worker: string): ShippedJobRecord {
    const job = this.jobs.get(jobId);
    if (!job) throw new Error(`job ${jobId} is not in this ledger`);
    const decisions = this.feed.decisions({ seriesUid: job.sourceSeriesUid }).map(({ decidedAt: _, ...decision }) => decision);
    const outputSeries = (this.db.prepare("SELECT series_uid FROM output_series WHERE job_id = ? ORDER BY rowid").all(jobId) as Row[])
      .map((row) => row.series_uid as string);
    return {
      jobId,
      attempt: job.attempts,
      worker,
      job: {
        state: job.state, stage: job.stage, nextRetryAt: job.nextRetryAt, errorStage: job.errorStage, errorMessage: job.errorMessage,
        errorRetryable: job.errorRetryable, provider: job.provider, slicesDone: job.slicesDone, slicesTotal: job.slicesTotal,
        outputSeriesUid: job.outputSeriesUid,
      },
      events: this.jobs.events(jobId),
      outputSeries,
      stageDurations: this.stageDurations.stats(),
      decisions,
      notifications: this.notifications.list({ jobId }).map(({ event, body }) => ({ event, state: job.state, body })),
    };
  }

  // --- in the follower's ledger ------------------------------------------------------------------------------------

  /**
   * Applies an attempt's record, all of it or nothing; false (nothing changes) unless the job is running that very
   * attempt. A record whose end the state graph does not allow from running is refused as a defect. Its result
   * notification is queued only when this node notifies (`notifying`: a webhook is configured here).
   */
  apply(record: ShippedJobRecord, notifying: boolean): boolean {
    if (!JOB_STATES[JobState.Running].includes(record.job.state)) {
      throw new Error(`job ${record.jobId}: a worker shipped state '${record.job.state}', which a running job cannot go to`);
    }
    return this.db.transaction(() => {
      const f = record.job;
      const changed = this.db.prepare(`UPDATE jobs SET state = @state, stage = @stage, next_retry_at = @nextRetryAt,
        error_stage = @errorStage, error_message = @errorMessage, error_retryable = @errorRetryable, provider = @provider,
        slices_done = @slicesDone, slices_total = @slicesTotal, worker = @worker, updated_at = @now
        WHERE id = @id AND state = @running AND attempts = @attempt`).run({
        ...f, errorRetryable: f.errorRetryable === null ? null : f.errorRetryable ? 1 : 0, worker: record.worker,
        now: new Date().toISOString(), id: record.jobId, running: JobState.Running, attempt: record.attempt,
      }).changes;
      if (changed === 0) return false;
      const event = this.db.prepare("INSERT INTO job_events (job_id, at, kind, message) VALUES (?, ?, ?, ?)");
      for (const e of record.events) event.run(record.jobId, e.at, e.kind, e.message);
      if (record.outputSeries.length > 0) this.jobs.recordOutputSeries(record.jobId, record.outputSeries);
      this.stageDurations.merge(record.stageDurations);
      for (const decision of record.decisions) this.feed.recordDecision(decision);
      for (const n of notifying ? record.notifications : []) {
        // The delivery id names the outbox row, which is the follower's: the body is re-issued under its own.
        this.notifications.enqueue(record.jobId, n.event, n.state, (deliveryId) => JSON.stringify({ ...JSON.parse(n.body) as object, deliveryId }));
      }
      return true;
    })();
  }

  /** A running attempt's progress, from its worker; ignored unless the job runs that attempt. */
  progress(jobId: number, attempt: number, worker: string, progress: AttemptProgress): boolean {
    return this.db.prepare(`UPDATE jobs SET stage = @stage, slices_done = @slicesDone, slices_total = @slicesTotal,
      provider = COALESCE(@provider, provider), worker = @worker, updated_at = @now
      WHERE id = @id AND state = @running AND attempts = @attempt`)
      .run({ ...progress, worker, now: new Date().toISOString(), id: jobId, running: JobState.Running, attempt }).changes > 0;
  }

  /** Jobs per worker and state, for /metrics (jobs the embedded mode ran have no worker and are not counted). */
  countsByWorker(): { worker: string; state: JobState; count: number }[] {
    return (this.db.prepare("SELECT worker, state, COUNT(*) AS n FROM jobs WHERE worker IS NOT NULL GROUP BY worker, state ORDER BY worker, state")
      .all() as Row[]).map((row) => ({ worker: row.worker as string, state: row.state as JobState, count: row.n as number }));
  }
}
