/**
 * The durable record of what the node saw and did, one SQLite file in the data folder, by concern:
 * - `feed`: the change-feed cursor, every series seen and the selection decision taken for it (feed-records.ts);
 * - `jobs`: one job per (source series, pipeline, model version), its state changed only by transitions, its
 *   timeline, and the series it wrote, so we never process our own output (job-records.ts);
 * - `stageDurations`: how long stages took, as the histograms /metrics serves (stage-durations.ts);
 * - `notifications`: the outbox of result notifications (webhook), written with the job ends they tell of
 *   (result-notifications.ts);
 * - `shipped`: a job's record carried between a distributed worker and the follower (shipped-jobs.ts).
 * The schema is versioned (ledger-schema.ts): opening a database of an earlier release migrates it.
 * A write the disk refuses (read-only, full, I/O error) is a known state, not a crash: `health` (ledger-health.ts).
 */
import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { FeedRecords } from "./feed-records.js";
import { JobRecords } from "./job-records.js";
import { LedgerHealth } from "./ledger-health.js";
import { migrate } from "./ledger-schema.js";
import { ResultNotifications } from "./result-notifications.js";
import { ShippedJobs } from "./shipped-jobs.js";
import { StageDurations } from "./stage-durations.js";

export const LEDGER_FILE = "ct-enhance.sqlite";
/** The data folder that opens a ledger in memory only (a distributed worker's record of the one job it runs). */
export const IN_MEMORY = ":memory:";

export class Ledger {
  readonly feed: FeedRecords;
  readonly jobs: JobRecords;
  readonly stageDurations: StageDurations;
  readonly notifications: ResultNotifications;
  /** A job's record carried between a distributed worker's ledger and the follower's (shipped-jobs.ts). */
  readonly shipped: ShippedJobs;
  /** Whether the file can be written now; the feed and the queue ask it before they write. */
  readonly health: LedgerHealth;
  private readonly db: Database.Database;

  /** `dataDir` IN_MEMORY: a ledger that lives in this process only, gone when closed. */
  constructor(dataDir: string) {
    const inMemory = dataDir === IN_MEMORY;
    if (!inMemory) mkdirSync(dataDir, { recursive: true });
    const file = inMemory ? IN_MEMORY : path.join(dataDir, LEDGER_FILE);
    this.db = new Database(file);
    if (!inMemory) {
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("synchronous = NORMAL");
    }
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
    this.shipped = new ShippedJobs(this.db, this.jobs, this.stageDurations, this.feed, this.notifications);
    this.health = new LedgerHealth(this.db, file);
  }

  /**
   * A seam for tests and drills: on, this connection refuses every write with SQLITE_READONLY (`PRAGMA query_only`),
   * as a read-only disk does (chmod does not stop root, who runs the tests here); off, it writes again.
   */
  refuseWrites(on: boolean): void {
    this.db.pragma(`query_only = ${on ? "ON" : "OFF"}`);
  }

  /** Runs `work` as one transaction: all of its writes, or none (nested calls join it). */
  transaction<T>(work: () => T): T {
    return this.db.transaction(work)();
  }

  close(): void {
    this.db.close();
  }
}
