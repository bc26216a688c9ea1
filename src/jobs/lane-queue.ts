/**
 * The ledger's side of the lanes: how many jobs wait in each lane, the lanes of the latest starts, and the job that
 * starts next by the lane rule (lanes.ts). Within a lane, queued jobs before due retries, then oldest first, as the
 * queue always was. Kept apart from job-records.ts so that the one rule has one home that `jobs.next()` calls.
 */
import type Database from "better-sqlite3";
import { Lane, LANES, pickLane, URGENT_STREAK, type WaitingByLane } from "./lanes.js";
import type { OffPeakWindow } from "./off-peak-window.js";

// JobState's values (job-records.ts imports this file, so they are spelled out here).
const WAITING = "(state = 'queued' OR (state = 'retry-wait' AND next_retry_at <= @at))";

export class LaneQueue {
  /** Unset: off-peak jobs run at any time (a ledger opened without the service's configuration, e.g. in a tool). */
  offPeakWindow: OffPeakWindow | undefined;

  constructor(private readonly db: Database.Database) {}

  waiting(at: Date): WaitingByLane {
    const counts = Object.fromEntries(LANES.map((lane) => [lane, 0])) as WaitingByLane;
    const rows = this.db.prepare(`SELECT lane, COUNT(*) AS n FROM jobs WHERE ${WAITING} GROUP BY lane`)
      .all({ at: at.toISOString() }) as { lane: Lane; n: number }[];
    for (const row of rows) counts[row.lane] = row.n;
    return counts;
  }

  /** The lanes of the latest starts (attempts), newest first: the ledger's 'started' events. */
  recentStarts(count = URGENT_STREAK): Lane[] {
    // job_events' rowid order is time order; the scan stops after `count` start events.
    return (this.db.prepare(`SELECT j.lane AS lane FROM job_events e JOIN jobs j ON j.id = e.job_id
      WHERE e.kind = 'started' ORDER BY e.id DESC LIMIT ?`).all(count) as { lane: Lane }[]).map((row) => row.lane);
  }

  offPeakOpen(at: Date): boolean {
    return this.offPeakWindow?.isOpen(at) ?? true;
  }

  /**
   * A waiting job (queued or retry-wait) moves to the urgent lane, with a timeline event; false when it is not
   * waiting or is urgent already.
   */
  markUrgent(id: number, reason: string): boolean {
    return this.db.transaction(() => {
      const at = new Date().toISOString();
      const changed = this.db.prepare(`UPDATE jobs SET lane = @urgent, updated_at = @at WHERE id = @id AND lane != @urgent
        AND state IN ('queued', 'retry-wait')`).run({ urgent: Lane.Urgent, at, id }).changes;
      if (changed > 0) {
        this.db.prepare("INSERT INTO job_events (job_id, at, kind, message) VALUES (?, ?, 'urgent', ?)").run(id, at, reason);
      }
      return changed > 0;
    })();
  }

  /** The id of the job that starts next, or undefined. */
  nextId(at: Date): number | undefined {
    const lane = pickLane(this.waiting(at), this.recentStarts(), this.offPeakOpen(at));
    if (!lane) return undefined;
    const row = this.db.prepare(`SELECT id FROM jobs WHERE ${WAITING} AND lane = @lane
      ORDER BY state = 'retry-wait', id LIMIT 1`).get({ at: at.toISOString(), lane }) as { id: number } | undefined;
    return row?.id;
  }
}
