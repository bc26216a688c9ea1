/**
 * The outbox of result notifications: one row per job end that a receiver is to be told about, written in the same
 * transaction as the job's end state (so a job never ends without its notification, nor is notified of an end that
 * was rolled back), with the exact body that will be signed and sent. The notifier (service/result-notifier.ts)
 * takes due rows, and each ends delivered or failed after its attempts; the rows survive a restart, so a
 * notification pending when the service stopped is sent when it starts again. Totals of outcomes are kept apart
 * (never deleted by retention) for /metrics.
 */
import type Database from "better-sqlite3";
import { deliveryIdOf, type NotificationEvent } from "../notify/result-notification.js";

export const NotificationState = {
  Pending: "pending",
  Delivered: "delivered",
  /** Given up: refused by the receiver, or every attempt failed. */
  Failed: "failed",
} as const;
export type NotificationState = (typeof NotificationState)[keyof typeof NotificationState];

export interface PendingNotification {
  id: number;
  jobId: number;
  event: NotificationEvent;
  deliveryId: string;
  body: string;
  /** Attempts made so far. */
  attempts: number;
}

export interface NotificationRecord extends PendingNotification {
  state: NotificationState;
  nextAttemptAt: string;
  lastResult: string | null;
  createdAt: string;
  settledAt: string | null;
}

/** Outcome counters for /metrics: notifications delivered and given up, and attempts that were retried. */
export type NotificationTotals = Record<"delivered" | "failed" | "retried", number>;

type Row = Record<string, unknown>;

function toRecord(row: Row): NotificationRecord {
  return {
    id: row.id as number,
    jobId: row.job_id as number,
    event: row.event as NotificationEvent,
    deliveryId: row.delivery_id as string,
    body: row.body as string,
    attempts: row.attempts as number,
    state: row.state as NotificationState,
    nextAttemptAt: row.next_attempt_at as string,
    lastResult: row.last_result as string | null,
    createdAt: row.created_at as string,
    settledAt: row.settled_at as string | null,
  };
}

export class ResultNotifications {
  constructor(private readonly db: Database.Database) {}

  /**
   * Queues a notification for job `jobId`'s end `state`, due now; `body` is written from its delivery id (which
   * needs the row's number). Call it inside the transaction that ends the job.
   */
  enqueue(jobId: number, event: NotificationEvent, state: string, body: (deliveryId: string) => string, at = new Date()): PendingNotification {
    return this.db.transaction(() => {
      const now = at.toISOString();
      const id = this.db.prepare(`INSERT INTO result_notifications (job_id, event, delivery_id, body, state, next_attempt_at, created_at)
        VALUES (?, ?, NULL, '', ?, ?, ?)`).run(jobId, event, NotificationState.Pending, now, now)
        .lastInsertRowid as number;
      const deliveryId = deliveryIdOf(jobId, state, id);
      const text = body(deliveryId);
      this.db.prepare("UPDATE result_notifications SET delivery_id = ?, body = ? WHERE id = ?").run(deliveryId, text, id);
      return { id, jobId, event, deliveryId, body: text, attempts: 0 };
    })();
  }

  /**
   * Pending notifications whose time has come, oldest first; one of a job waits while an earlier one of the same job
   * is still pending, so a receiver hears a job's ends in the order they happened.
   */
  due(at: Date = new Date(), limit = 20): PendingNotification[] {
    return (this.db.prepare(`SELECT * FROM result_notifications n WHERE n.state = @pending AND n.next_attempt_at <= @at
      AND NOT EXISTS (SELECT 1 FROM result_notifications e WHERE e.job_id = n.job_id AND e.state = @pending AND e.id < n.id)
      ORDER BY n.next_attempt_at, n.id LIMIT @limit`)
      .all({ pending: NotificationState.Pending, at: at.toISOString(), limit }) as Row[]).map(toRecord);
  }

  /** When the earliest pending notification is due, or undefined when none is pending. */
  nextDueAt(): Date | undefined {
    const row = this.db.prepare("SELECT MIN(next_attempt_at) AS at FROM result_notifications WHERE state = ?")
      .get(NotificationState.Pending) as Row;
    return row.at ? new Date(row.at as string) : undefined;
  }

  delivered(id: number, attempts: number, result: string, at = new Date()): void {
    this.settle(id, NotificationState.Delivered, attempts, result, at);
  }

  /** Given up: the receiver refused it, or the last attempt failed. */
  gaveUp(id: number, attempts: number, result: string, at = new Date()): void {
    this.settle(id, NotificationState.Failed, attempts, result, at);
  }

  /** The attempt failed in a way worth another: try again at `next`. */
  retryAt(id: number, attempts: number, result: string, next: Date): void {
    this.db.transaction(() => {
      this.db.prepare("UPDATE result_notifications SET attempts = ?, last_result = ?, next_attempt_at = ? WHERE id = ? AND state = ?")
        .run(attempts, result, next.toISOString(), id, NotificationState.Pending);
      this.count("retried");
    })();
  }

  get(id: number): NotificationRecord | undefined {
    const row = this.db.prepare("SELECT * FROM result_notifications WHERE id = ?").get(id) as Row | undefined;
    return row ? toRecord(row) : undefined;
  }

  list(filter: { jobId?: number } = {}): NotificationRecord[] {
    return (this.db.prepare("SELECT * FROM result_notifications WHERE (@job IS NULL OR job_id = @job) ORDER BY id")
      .all({ job: filter.jobId ?? null }) as Row[]).map(toRecord);
  }

  pendingCount(): number {
    return (this.db.prepare("SELECT COUNT(*) AS n FROM result_notifications WHERE state = ?").get(NotificationState.Pending) as Row).n as number;
  }

  totals(): NotificationTotals {
    const totals: NotificationTotals = { delivered: 0, failed: 0, retried: 0 };
    for (const row of this.db.prepare("SELECT outcome, count FROM result_notification_totals").all() as Row[]) {
      totals[row.outcome as keyof NotificationTotals] = row.count as number;
    }
    return totals;
  }

  /** Retention: deletes delivered and failed notifications settled before `before` (pending ones stay); how many. */
  deleteSettledBefore(before: Date): number {
    return this.db.prepare("DELETE FROM result_notifications WHERE state != ? AND settled_at < ?")
      .run(NotificationState.Pending, before.toISOString()).changes;
  }

  private settle(id: number, state: NotificationState, attempts: number, result: string, at: Date): void {
    this.db.transaction(() => {
      const changed = this.db.prepare(`UPDATE result_notifications SET state = ?, attempts = ?, last_result = ?, settled_at = ?
        WHERE id = ? AND state = ?`).run(state, attempts, result, at.toISOString(), id, NotificationState.Pending).changes;
      if (changed > 0) this.count(state === NotificationState.Delivered ? "delivered" : "failed");
    })();
  }

  private count(outcome: keyof NotificationTotals): void {
    this.db.prepare(`INSERT INTO result_notification_totals (outcome, count) VALUES (?, 1)
      ON CONFLICT (outcome) DO UPDATE SET count = count + 1`).run(outcome);
  }
}
