import Database from "better-sqlite3";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { WatchState } from "../../src/jobs/feed-records.js";
import { JobState } from "../../src/jobs/job-records.js";
import { Ledger, LEDGER_FILE } from "../../src/jobs/ledger.js";
import { SCHEMA_VERSION } from "../../src/jobs/ledger-schema.js";
import { DURATION_BUCKETS_SECONDS } from "../../src/jobs/stage-durations.js";

const key = { sourceOrthancId: "o1", sourceSeriesUid: "1.2.3", studyUid: "1.2", pipeline: "p", modelId: "m", modelVersion: "1" };

describe("job ledger", () => {
  let dir: string;
  let ledger: Ledger;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "ledger-"));
    ledger = new Ledger(dir);
  });
  afterEach(() => {
    ledger.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps one job per (series, pipeline, model version) across restarts", () => {
    expect(ledger.jobs.create(key).created).toBe(true);
    ledger.close();
    ledger = new Ledger(dir);
    const again = ledger.jobs.create(key);
    expect(again.created).toBe(false);
    expect(ledger.jobs.list()).toHaveLength(1);
    expect(ledger.jobs.create({ ...key, modelVersion: "2" }).created).toBe(true);
  });

  it("records series events and the cursor together", () => {
    ledger.feed.recordChanges([{ orthancId: "a", stable: false }, { orthancId: "b", stable: true }], 42);
    expect(ledger.feed.cursor()).toBe(42);
    expect(ledger.feed.watchedSeries(WatchState.AwaitingStable)).toEqual(["a"]);
    expect(ledger.feed.watchedSeries(WatchState.Stable)).toEqual(["b"]);
    ledger.feed.recordChanges([{ orthancId: "a", stable: true }], 43);
    expect(ledger.feed.watchedSeries(WatchState.Stable).sort()).toEqual(["a", "b"]);
  });

  it("schedules retries, fails for good, and requeues a deliberate re-run as a new run", () => {
    const { job } = ledger.jobs.create(key);
    expect(ledger.jobs.start(job.id)).toBe(true);
    const later = new Date(Date.now() + 60_000);
    ledger.jobs.fail(job.id, { stage: "fetch", message: "Orthanc down", retryable: true }, later);
    expect(ledger.jobs.get(job.id)).toMatchObject({ state: JobState.RetryWait, errorStage: "fetch", attempts: 1 });
    expect(ledger.jobs.next()).toBeUndefined();
    expect(ledger.jobs.next(new Date(later.getTime() + 1))?.id).toBe(job.id);
    ledger.jobs.start(job.id);
    ledger.jobs.fail(job.id, { stage: "volume", message: "missing slice", retryable: false }, null);
    expect(ledger.jobs.get(job.id)).toMatchObject({ state: JobState.Failed, errorRetryable: false, attempts: 2 });
    expect(ledger.jobs.requeue(job.id, "operator asked")).toBe(true);
    expect(ledger.jobs.get(job.id)).toMatchObject({ state: JobState.Queued, run: 2, attempts: 0, errorMessage: null });
    expect(ledger.jobs.events(job.id).map((e) => e.kind)).toEqual(["queued", "started", "retry-wait", "started", "failed", "requeued"]);
  });

  it("changes a job's state only along the graph, and only from the state it is in", () => {
    const { job } = ledger.jobs.create(key);
    expect(ledger.jobs.finish(job.id, "never started")).toBe(false); // queued -> done is no edge the job is on
    expect(ledger.jobs.get(job.id)?.state).toBe(JobState.Queued);
    expect(() => ledger.jobs.transition(job.id, [JobState.Queued], JobState.Done, { kind: "x", message: "y" }))
      .toThrow(/no edge queued -> done/);
    expect(ledger.jobs.start(job.id)).toBe(true);
    expect(ledger.jobs.start(job.id)).toBe(false); // a second worker cannot take the running job
    expect(ledger.jobs.requeue(job.id, "while running")).toBe(false);
    expect(ledger.jobs.events(job.id).map((e) => e.kind)).toEqual(["queued", "started"]);
  });

  it("puts jobs a crash left running back in the queue", () => {
    const { job } = ledger.jobs.create(key);
    ledger.jobs.start(job.id);
    ledger.close();
    ledger = new Ledger(dir);
    expect(ledger.jobs.recoverInterrupted().map((j) => j.id)).toEqual([job.id]);
    expect(ledger.jobs.get(job.id)?.state).toBe(JobState.Queued);
  });

  it("knows its own output series", () => {
    const { job } = ledger.jobs.create(key);
    ledger.jobs.recordOutputSeries(job.id, ["2.25.99", "2.25.100"]);
    expect(ledger.jobs.get(job.id)?.outputSeriesUid).toBe("2.25.99");
    expect(ledger.jobs.isOutputSeries("2.25.99")).toBe(true);
    expect(ledger.jobs.isOutputSeries("2.25.100")).toBe(true);
    expect(ledger.jobs.isOutputSeries("1.2.3")).toBe(false);
  });
});

describe("ledger schema migrations", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "ledger-migrate-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A database as ct-enhance 0.1.0 wrote it: no user_version, one stage_timings row per stage of every job. */
  function databaseOf010(): void {
    const db = new Database(path.join(dir, LEDGER_FILE));
    db.exec(readFileSync(path.join(import.meta.dirname, "../fixtures/ledger-schema-0.1.0.sql"), "utf8"));
    const at = "2026-11-20T10:00:00.000Z";
    db.prepare("INSERT INTO feed_cursor (id, seq) VALUES (1, 77)").run();
    db.prepare(`INSERT INTO jobs (source_orthanc_id, source_series_uid, study_uid, pipeline, model_id, model_version, state,
      attempts, provider, created_at, updated_at) VALUES ('o1', '1.2.3', '1.2', 'p', 'm', '1', 'done', 1, 'cpu', ?, ?)`).run(at, at);
    db.prepare("INSERT INTO job_events (job_id, at, kind, message) VALUES (1, ?, 'done', 'stored')").run(at);
    db.prepare("INSERT INTO output_series (series_uid, job_id) VALUES ('2.25.7', 1)").run();
    const timing = db.prepare("INSERT INTO stage_timings (job_id, stage, provider, seconds, at) VALUES (1, ?, ?, ?, ?)");
    timing.run("fetch", null, 0.8, at);
    timing.run("infer", "cpu", 41, at);
    timing.run("infer", "cpu", 3, at);
    timing.run("store", null, 1.5, at);
    db.close();
  }

  it("opens a database of 0.1.0, keeps its records and turns its stage timings into histograms", () => {
    databaseOf010();
    const ledger = new Ledger(dir);
    try {
      expect(ledger.feed.cursor()).toBe(77);
      expect(ledger.jobs.get(1)).toMatchObject({ state: JobState.Done, sourceSeriesUid: "1.2.3", provider: "cpu" });
      expect(ledger.jobs.get(1)!.lane).toBe("routine"); // version 5: jobs of earlier releases ran as routine ones
      expect(ledger.jobs.events(1).map((e) => e.kind)).toEqual(["done"]);
      expect(ledger.jobs.isOutputSeries("2.25.7")).toBe(true);
      const infer = ledger.stageDurations.stats().find((s) => s.stage === "infer")!;
      expect(infer).toMatchObject({ provider: "cpu", count: 2, sumSeconds: 44 });
      const bucketAt = (le: number) => infer.buckets[DURATION_BUCKETS_SECONDS.indexOf(le as never)];
      expect([bucketAt(2), bucketAt(5), bucketAt(60)]).toEqual([0, 1, 2]);
      expect(ledger.stageDurations.stats().find((s) => s.stage === "fetch")).toMatchObject({ provider: "", count: 1 });
    } finally {
      ledger.close();
    }
    const db = new Database(path.join(dir, LEDGER_FILE), { readonly: true });
    expect(db.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'stage_timings'").get()).toBeUndefined();
    db.close();
  });

  it("opens its own database again without migrating, and refuses one from a newer release", () => {
    new Ledger(dir).close();
    new Ledger(dir).close();
    const db = new Database(path.join(dir, LEDGER_FILE));
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => new Ledger(dir)).toThrow(new RegExp(`schema version ${SCHEMA_VERSION + 1}, newer than this ct-enhance knows`));
  });
});
