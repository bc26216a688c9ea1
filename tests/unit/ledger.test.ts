import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { JobState, Ledger, WatchState } from "../../src/jobs/ledger.js";

describe("job ledger", () => {
  let dir: string;
  let ledger: Ledger;
  const key = { sourceOrthancId: "o1", sourceSeriesUid: "1.2.3", studyUid: "1.2", pipeline: "p", modelId: "m", modelVersion: "1" };

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "ledger-"));
    ledger = new Ledger(dir);
  });
  afterEach(() => {
    ledger.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps one job per (series, pipeline, model version) across restarts", () => {
    expect(ledger.createJob(key).created).toBe(true);
    ledger.close();
    ledger = new Ledger(dir);
    const again = ledger.createJob(key);
    expect(again.created).toBe(false);
    expect(ledger.jobs()).toHaveLength(1);
    expect(ledger.createJob({ ...key, modelVersion: "2" }).created).toBe(true);
  });

  it("records series events and the cursor together", () => {
    ledger.recordChanges([{ orthancId: "a", stable: false }, { orthancId: "b", stable: true }], 42);
    expect(ledger.cursor()).toBe(42);
    expect(ledger.watchedSeries(WatchState.AwaitingStable)).toEqual(["a"]);
    expect(ledger.watchedSeries(WatchState.Stable)).toEqual(["b"]);
    ledger.recordChanges([{ orthancId: "a", stable: true }], 43);
    expect(ledger.watchedSeries(WatchState.Stable).sort()).toEqual(["a", "b"]);
  });

  it("schedules retries, fails for good, and requeues a deliberate re-run as a new run", () => {
    const { job } = ledger.createJob(key);
    ledger.startJob(job.id);
    const later = new Date(Date.now() + 60_000);
    ledger.failJob(job.id, { stage: "fetch", message: "Orthanc down", retryable: true }, later);
    expect(ledger.job(job.id)).toMatchObject({ state: JobState.RetryWait, errorStage: "fetch", attempts: 1 });
    expect(ledger.nextRunnableJob()).toBeUndefined();
    expect(ledger.nextRunnableJob(new Date(later.getTime() + 1))?.id).toBe(job.id);
    ledger.startJob(job.id);
    ledger.failJob(job.id, { stage: "volume", message: "missing slice", retryable: false }, null);
    expect(ledger.job(job.id)).toMatchObject({ state: JobState.Failed, errorRetryable: false, attempts: 2 });
    expect(ledger.requeue(job.id, "operator asked")).toMatchObject({ state: JobState.Queued, run: 2, attempts: 0 });
    expect(ledger.events(job.id).map((e) => e.kind)).toEqual(["queued", "started", "retry-wait", "started", "failed", "requeued"]);
  });

  it("puts jobs a crash left running back in the queue", () => {
    const { job } = ledger.createJob(key);
    ledger.startJob(job.id);
    ledger.close();
    ledger = new Ledger(dir);
    expect(ledger.recoverInterruptedJobs().map((j) => j.id)).toEqual([job.id]);
    expect(ledger.job(job.id)?.state).toBe(JobState.Queued);
  });

  it("knows its own output series", () => {
    const { job } = ledger.createJob(key);
    ledger.recordOutputSeries(job.id, "2.25.99");
    expect(ledger.isOutputSeries("2.25.99")).toBe(true);
    expect(ledger.isOutputSeries("1.2.3")).toBe(false);
  });
});
