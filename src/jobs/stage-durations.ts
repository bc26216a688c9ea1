/**
 * How long jobs spent in each stage, kept as the metric /metrics serves: a cumulative histogram per (stage,
 * provider) with its count and sum, updated as each stage ends. It survives restarts and never goes backwards (job
 * retention does not touch it), as Prometheus expects of counters.
 */
import type Database from "better-sqlite3";

/** Upper bounds (seconds) of the histogram's buckets; +Inf is the count. Stored per bound: changing them needs a migration. */
export const DURATION_BUCKETS_SECONDS = [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800] as const;

/** Seconds a stage took, summed up for /metrics (a Prometheus histogram). */
export interface StageDurationStats {
  stage: string;
  /** The execution provider for infer; "" when none applies. */
  provider: string;
  count: number;
  sumSeconds: number;
  /** Cumulative counts, one per DURATION_BUCKETS_SECONDS bound, in that order. */
  buckets: number[];
}

type Row = Record<string, unknown>;

export class StageDurations {
  constructor(private readonly db: Database.Database) {}

  record(stage: string, provider: string | null, seconds: number): void {
    const key = { stage, provider: provider ?? "", seconds };
    this.db.transaction(() => {
      this.db.prepare(`INSERT INTO stage_duration_totals (stage, provider, count, sum_seconds) VALUES (@stage, @provider, 1, @seconds)
        ON CONFLICT (stage, provider) DO UPDATE SET count = count + 1, sum_seconds = sum_seconds + excluded.sum_seconds`).run(key);
      const bucket = this.db.prepare(`INSERT INTO stage_duration_buckets (stage, provider, le, count) VALUES (@stage, @provider, @le, @hit)
        ON CONFLICT (stage, provider, le) DO UPDATE SET count = count + excluded.count`);
      for (const le of DURATION_BUCKETS_SECONDS) bucket.run({ ...key, le, hit: seconds <= le ? 1 : 0 });
    })();
  }

  /** Adds another ledger's histograms to these (a distributed worker's, for the job it ran). */
  merge(stats: readonly StageDurationStats[]): void {
    this.db.transaction(() => {
      for (const row of stats) {
        const key = { stage: row.stage, provider: row.provider };
        this.db.prepare(`INSERT INTO stage_duration_totals (stage, provider, count, sum_seconds) VALUES (@stage, @provider, @count, @sum)
          ON CONFLICT (stage, provider) DO UPDATE SET count = count + excluded.count, sum_seconds = sum_seconds + excluded.sum_seconds`)
          .run({ ...key, count: row.count, sum: row.sumSeconds });
        const bucket = this.db.prepare(`INSERT INTO stage_duration_buckets (stage, provider, le, count) VALUES (@stage, @provider, @le, @hit)
          ON CONFLICT (stage, provider, le) DO UPDATE SET count = count + excluded.count`);
        DURATION_BUCKETS_SECONDS.forEach((le, i) => bucket.run({ ...key, le, hit: row.buckets[i] ?? 0 }));
      }
    })();
  }

  stats(): StageDurationStats[] {
    const buckets = this.db.prepare("SELECT stage, provider, le, count FROM stage_duration_buckets").all() as Row[];
    const countAt = new Map(buckets.map((b) => [`${String(b.stage)}\u0000${String(b.provider)}\u0000${Number(b.le)}`, b.count as number]));
    return (this.db.prepare("SELECT * FROM stage_duration_totals ORDER BY stage, provider").all() as Row[]).map((row) => {
      const stage = row.stage as string;
      const provider = row.provider as string;
      return {
        stage,
        provider,
        count: row.count as number,
        sumSeconds: row.sum_seconds as number,
        buckets: DURATION_BUCKETS_SECONDS.map((le) => countAt.get(`${stage}\u0000${provider}\u0000${le}`) ?? 0),
      };
    });
  }
}
