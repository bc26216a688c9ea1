/**
 * The ledger's SQLite schema, versioned with PRAGMA user_version: each migration runs once, in order, in one
 * transaction with the version bump, so a database written by any earlier release opens in this one and a crash
 * mid-migration leaves the old version intact. A database from a newer release is refused (an older service must not
 * write into a schema it does not know).
 */
import type Database from "better-sqlite3";
import { DURATION_BUCKETS_SECONDS } from "./stage-durations.js";

interface Migration {
  version: number;
  what: string;
  apply(db: Database.Database): void;
}

/** Version 1: the schema as it shipped before versioning (0.1.0). IF NOT EXISTS adopts such a database unchanged. */
const V1_SCHEMA = `
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

/**
 * Version 2: stage durations become what /metrics reads, a cumulative histogram per (stage, provider), instead of
 * one row per stage of every job. The table stays small, /metrics no longer scans it, and retention (which deletes
 * old jobs) no longer makes Prometheus counters go backwards. The rows of version 1 are summed into it. Also an
 * index for the job queue's look-ups by state and for decisions by SeriesInstanceUID.
 */
function v2(db: Database.Database): void {
  db.exec(`
    CREATE TABLE stage_duration_totals (
      stage TEXT NOT NULL, provider TEXT NOT NULL, count INTEGER NOT NULL, sum_seconds REAL NOT NULL,
      PRIMARY KEY (stage, provider));
    CREATE TABLE stage_duration_buckets (
      stage TEXT NOT NULL, provider TEXT NOT NULL, le REAL NOT NULL, count INTEGER NOT NULL,
      PRIMARY KEY (stage, provider, le));
    INSERT INTO stage_duration_totals (stage, provider, count, sum_seconds)
      SELECT stage, COALESCE(provider, ''), COUNT(*), SUM(seconds) FROM stage_timings GROUP BY stage, COALESCE(provider, '');
    CREATE INDEX jobs_state ON jobs (state, next_retry_at);
    CREATE INDEX decisions_series_uid ON decisions (series_uid);`);
  const bucket = db.prepare(`INSERT INTO stage_duration_buckets (stage, provider, le, count)
    SELECT stage, COALESCE(provider, ''), @le, SUM(seconds <= @le) FROM stage_timings GROUP BY stage, COALESCE(provider, '')`);
  for (const le of DURATION_BUCKETS_SECONDS) bucket.run({ le });
  db.exec("DROP TABLE stage_timings;");
}

/** Version 3: whether a person forced a job past its rules, intended use and output checks. */
const V3 = "ALTER TABLE jobs ADD COLUMN forced INTEGER NOT NULL DEFAULT 0;";

/**
 * Version 4: the outbox of result notifications (webhook), written with the job's end state, and the totals of
 * their outcomes for /metrics (not touched by retention, so counters never go backwards).
 */
const V4 = `
CREATE TABLE result_notifications (
  id INTEGER PRIMARY KEY AUTOINCREMENT, job_id INTEGER NOT NULL, event TEXT NOT NULL, delivery_id TEXT UNIQUE,
  body TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at TEXT NOT NULL,
  last_result TEXT, created_at TEXT NOT NULL, settled_at TEXT);
CREATE INDEX result_notifications_due ON result_notifications (state, next_attempt_at);
CREATE INDEX result_notifications_job ON result_notifications (job_id);
CREATE TABLE result_notification_totals (outcome TEXT PRIMARY KEY, count INTEGER NOT NULL);`;

/**
 * Version 5: the lane a job waits in (urgent, routine, off-peak; lanes.ts). Jobs of earlier releases are routine,
 * as they ran. The 'started' events are what the lane rule counts a streak from: an index on the kind keeps that
 * read short on a long timeline.
 */
const V5 = `
ALTER TABLE jobs ADD COLUMN lane TEXT NOT NULL DEFAULT 'routine';
CREATE INDEX job_events_kind ON job_events (kind, id);`;

/**
 * Version 6: the worker that ran a job's last attempt (distributed mode; null in the embedded mode).
 */
const V6 = "ALTER TABLE jobs ADD COLUMN worker TEXT;";

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, what: "the schema of 0.1.0", apply: (db) => db.exec(V1_SCHEMA) },
  { version: 2, what: "stage durations as histograms; indexes on job state and decision UID", apply: v2 },
  { version: 3, what: "jobs.forced", apply: (db) => db.exec(V3) },
  { version: 4, what: "result notification outbox and its totals", apply: (db) => db.exec(V4) },
  { version: 5, what: "jobs.lane (priority lanes)", apply: (db) => db.exec(V5) },
  { version: 6, what: "jobs.worker", apply: (db) => db.exec(V6) },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** Brings the database to SCHEMA_VERSION; returns the versions applied. */
export function migrate(db: Database.Database, file: string): number[] {
  const current = db.pragma("user_version", { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw new Error(`the ledger ${file} has schema version ${current}, newer than this ct-enhance knows ` +
      `(${SCHEMA_VERSION}): run the release that wrote it, or point CT_ENHANCE_DATA_DIR at another folder`);
  }
  const applied: number[] = [];
  for (const migration of MIGRATIONS.filter((m) => m.version > current)) {
    db.transaction(() => {
      migration.apply(db);
      db.pragma(`user_version = ${migration.version}`);
    })();
    applied.push(migration.version);
  }
  return applied;
}

