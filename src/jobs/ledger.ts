/**
 * The durable record of what the node saw and did, one SQLite file in the data folder, by concern:
 * - `feed`: the change-feed cursor, every series seen and the selection decision taken for it (feed-records.ts);
 * - `jobs`: one job per (source series, pipeline, model version), its state changed only by transitions, its
 *   timeline, and the series it wrote, so we never process our own output (job-records.ts);
 * - `stageDurations`: how long stages took, as the histograms /metrics serves (stage-durations.ts);
 * - `notifications`: the outbox of result notifications (webhook), written with the job ends they tell of
 *   (result-notifications.ts).
 * The schema is versioned (ledger-schema.ts): opening a database of an earlier release migrates it.
 */
import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { FeedRecords } from "./feed-records.js";
import { JobRecords } from "./job-records.js";
import { migrate } from "./ledger-schema.js";
import { ResultNotifications } from "./result-notifications.js";
import { StageDurations } from "./stage-durations.js";

export const LEDGER_FILE = "ct-enhance.sqlite";

export class Ledger {
  readonly feed: FeedRecords;
  readonly jobs: JobRecords;
  readonly stageDurations: StageDurations;
  readonly notifications: ResultNotifications;
  private readonly db: Database.Database;

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true });
    const file = path.join(dataDir, LEDGER_FILE);
    this.db = new Database(file);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    try {
      migrate(this.db, file);
    } catch (error) {
      this.db.close();
      throw error;
    }
    this.feed = new FeedRecords(this.db);
    this.jobs = new JobRecords(this.db);
    this.stageDurations = new StageDurations(this.db);
    this.notifications = new ResultNotifications(this.db);
  }

  /** Runs `work` as one transaction: all of its writes, or none (nested calls join it). */
  transaction<T>(work: () => T): T {
    return this.db.transaction(work)();
  }

  close(): void {
    this.db.close();
  }
}
