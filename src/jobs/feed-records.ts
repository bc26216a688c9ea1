/**
 * What the node saw of Orthanc: the change feed's cursor, every series seen with where it stands (waiting to be
 * stable, stable, decided, gone), and the selection decision taken for it per pipeline, with the reason.
 */
import type Database from "better-sqlite3";

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

export interface Decision {
  orthancSeriesId: string;
  seriesUid: string | null;
  pipeline: string | null;
  /** queued by the rules; skipped by the rules or, once measured, by intended use; its output rejected by its checks. */
  decision: "queued" | "skipped" | "rejected";
  reason: string;
  decidedAt: string;
}

export interface WatchedSeries {
  orthancId: string;
  state: WatchState;
  updatedAt: string;
}

type Row = Record<string, unknown>;
const now = (): string => new Date().toISOString();

export class FeedRecords {
  constructor(private readonly db: Database.Database) {}

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
        state = CASE WHEN @state = @stable THEN @stable
                     WHEN watched_series.state IN (@decided, @gone) THEN @awaiting
                     ELSE watched_series.state END,
        updated_at = @now`);
    const states = { stable: WatchState.Stable, decided: WatchState.Decided, gone: WatchState.Gone, awaiting: WatchState.AwaitingStable };
    this.db.transaction(() => {
      for (const s of series) {
        upsert.run({ ...states, id: s.orthancId, state: s.stable ? WatchState.Stable : WatchState.AwaitingStable, now: now() });
      }
      this.setCursor(cursor);
    })();
  }

  watchedSeries(state: WatchState): string[] {
    return (this.db.prepare("SELECT orthanc_id FROM watched_series WHERE state = ? ORDER BY updated_at").all(state) as Row[])
      .map((row) => row.orthanc_id as string);
  }

  /** Every series the ledger has watched, with its state and when that last changed. */
  watchedSeriesRecords(): WatchedSeries[] {
    return (this.db.prepare("SELECT orthanc_id, state, updated_at FROM watched_series").all() as Row[]).map((row) => ({
      orthancId: row.orthanc_id as string,
      state: row.state as WatchState,
      updatedAt: row.updated_at as string,
    }));
  }

  setWatchState(orthancId: string, state: WatchState): void {
    this.db.prepare(`
      INSERT INTO watched_series (orthanc_id, state, first_seen, updated_at) VALUES (?, ?, ?, ?)
      ON CONFLICT(orthanc_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`)
      .run(orthancId, state, now(), now());
  }

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

  /** Retention: decisions older than the cutoff; returns how many were deleted. */
  deleteDecisionsBefore(before: Date): number {
    return this.db.prepare("DELETE FROM decisions WHERE decided_at < ?").run(before.toISOString()).changes;
  }
}
