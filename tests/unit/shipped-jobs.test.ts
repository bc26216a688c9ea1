/**
 * The distributed mode's record shipping (src/jobs/shipped-jobs.ts): a worker's in-memory ledger seeded with the
 * follower's row runs an attempt, and its record applied to the follower's ledger shows what an embedded run would
 * (state, timeline, output series, stage durations, decision, result notification under the follower's delivery id),
 * once: applied again, or for an attempt the follower no longer runs, it changes nothing.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { JobState } from "../../src/jobs/job-records.js";
import { IN_MEMORY, Ledger } from "../../src/jobs/ledger.js";
import type { ShippedJobRecord } from "../../src/jobs/shipped-jobs.js";
import { NotificationEvent } from "../../src/notify/result-notification.js";
import { endJob, NO_RESULT } from "../../src/pipeline/job-notification.js";

const key = { sourceOrthancId: "o1", sourceSeriesUid: "1.2.3", studyUid: "1.2", pipeline: "p", modelId: "m", modelVersion: "1" };

describe("a job's record shipped from a worker to the follower", () => {
  let dir: string;
  let follower: Ledger;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "shipped-"));
    follower = new Ledger(dir);
  });
  afterEach(() => {
    follower.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The follower hands the job's next attempt out, as its dispatcher does. */
  const dispatch = (id: number): void => {
    expect(follower.jobs.transition(id, [JobState.Queued, JobState.RetryWait], JobState.Running,
      { kind: "dispatched", message: "to the queue" }, { attempts: "next", error: null })).toBe(true);
  };

  /** A worker runs the dispatched attempt in its own memory and answers its record. */
  const runOnWorker = (id: number, end: (worker: Ledger) => void): ShippedJobRecord => {
    const worker = new Ledger(IN_MEMORY);
    try {
      worker.shipped.seed(follower.jobs.get(id)!);
      expect(worker.jobs.start(id)).toBe(true); // what the runner does first
      worker.jobs.setStage(id, "fetch");
      worker.stageDurations.record("fetch", null, 0.7);
      worker.jobs.recordOutputSeries(id, ["2.25.1", "2.25.2"]);
      worker.jobs.setStage(id, "infer");
      worker.jobs.setProvider(id, "cpu");
      worker.jobs.setProgress(id, 4, 4);
      worker.stageDurations.record("infer", "cpu", 3.2);
      end(worker);
      return worker.shipped.record(id, "worker-a");
    } finally {
      worker.close();
    }
  };

  it("applies a done attempt once, with its timeline, outputs, durations and notification", () => {
    const { job } = follower.jobs.create(key);
    dispatch(job.id);
    const record = runOnWorker(job.id, (worker) => {
      endJob(worker, true, job.id, () => worker.jobs.finish(job.id, "stored in 4.1 s"), { outputs: [], findings: null });
    });
    expect(record.attempt).toBe(1);
    expect(record.job.state).toBe(JobState.Done);

    expect(follower.shipped.apply(record, true)).toBe(true);
    const applied = follower.jobs.get(job.id)!;
    expect(applied).toMatchObject({ state: JobState.Done, attempts: 1, worker: "worker-a", provider: "cpu", slicesDone: 4, slicesTotal: 4, outputSeriesUid: "2.25.1" });
    const kinds = follower.jobs.events(job.id).map((e) => e.kind);
    expect(kinds).toEqual(["queued", "dispatched", "started", "stage", "stage", "done"]);
    expect(follower.jobs.isOutputSeries("2.25.2")).toBe(true);
    const fetch = follower.stageDurations.stats().find((s) => s.stage === "fetch")!;
    expect(fetch).toMatchObject({ count: 1, sumSeconds: 0.7 });
    const notifications = follower.notifications.list({ jobId: job.id });
    expect(notifications).toHaveLength(1);
    expect(notifications[0]!.event).toBe(NotificationEvent.Done);
    const body = JSON.parse(notifications[0]!.body) as { deliveryId: string; job: { id: number } };
    expect(body.deliveryId).toBe(notifications[0]!.deliveryId); // the follower's outbox row, not the worker's
    expect(body.job.id).toBe(job.id);

    // The same record again (a redelivered event and the sweep): nothing changes.
    expect(follower.shipped.apply(record, true)).toBe(false);
    expect(follower.jobs.events(job.id)).toHaveLength(kinds.length);
    expect(follower.notifications.list({ jobId: job.id })).toHaveLength(1);
    expect(follower.stageDurations.stats().find((s) => s.stage === "fetch")!.count).toBe(1);
  });

  it("keeps the worker's result notification only when the follower notifies", () => {
    const { job } = follower.jobs.create(key);
    dispatch(job.id);
    const record = runOnWorker(job.id, (worker) => {
      endJob(worker, true, job.id, () => worker.jobs.finish(job.id, "stored"), NO_RESULT);
    });
    expect(record.notifications).toHaveLength(1);
    expect(follower.shipped.apply(record, false)).toBe(true);
    expect(follower.jobs.get(job.id)!.state).toBe(JobState.Done);
    expect(follower.notifications.list({ jobId: job.id })).toEqual([]);
  });

  it("refuses a late record of an attempt the follower has since given up and handed out again", () => {
    const { job } = follower.jobs.create(key);
    dispatch(job.id);
    const first = runOnWorker(job.id, (worker) => worker.jobs.fail(job.id, { stage: "store", message: "Orthanc 503", retryable: true }, new Date()));
    // The follower gave attempt 1 up (its entry failed) and dispatched attempt 2 before the record came.
    follower.jobs.fail(job.id, { stage: "queue", message: "lost", retryable: true }, new Date());
    dispatch(job.id);
    expect(follower.shipped.apply(first, true)).toBe(false);
    expect(follower.jobs.get(job.id)).toMatchObject({ state: JobState.Running, attempts: 2 });

    const second = runOnWorker(job.id, (worker) => worker.jobs.skip(job.id, "no lungs in the volume"));
    expect(second.attempt).toBe(2);
    expect(follower.shipped.apply(second, true)).toBe(true);
    expect(follower.jobs.get(job.id)).toMatchObject({ state: JobState.Skipped, errorStage: "probe", errorRetryable: false });
  });

  it("carries a retry-wait with its time and error, and a decision", () => {
    const { job } = follower.jobs.create(key);
    dispatch(job.id);
    const at = new Date(Date.now() + 60_000);
    const record = runOnWorker(job.id, (worker) => {
      worker.jobs.fail(job.id, { stage: "store", message: "Orthanc answered 503", retryable: true }, at);
      worker.feed.recordDecision({ orthancSeriesId: "o1", seriesUid: "1.2.3", pipeline: "p", decision: "rejected", reason: "checks" });
    });
    expect(follower.shipped.apply(record, true)).toBe(true);
    expect(follower.jobs.get(job.id)).toMatchObject({
      state: JobState.RetryWait, nextRetryAt: at.toISOString(), errorStage: "store", errorMessage: "Orthanc answered 503", errorRetryable: true,
    });
    expect(follower.feed.decisions({ seriesUid: "1.2.3" }).map((d) => d.decision)).toEqual(["rejected"]);
  });

  it("applies progress only to the attempt that runs", () => {
    const { job } = follower.jobs.create(key);
    expect(follower.shipped.progress(job.id, 1, "worker-a", { stage: "infer", slicesDone: 1, slicesTotal: 4, provider: "cpu" })).toBe(false);
    dispatch(job.id);
    expect(follower.shipped.progress(job.id, 2, "worker-a", { stage: "infer", slicesDone: 1, slicesTotal: 4, provider: "cpu" })).toBe(false);
    expect(follower.shipped.progress(job.id, 1, "worker-b", { stage: "infer", slicesDone: 2, slicesTotal: 4, provider: "cpu" })).toBe(true);
    expect(follower.jobs.get(job.id)).toMatchObject({ stage: "infer", slicesDone: 2, worker: "worker-b", provider: "cpu" });
    expect(follower.shipped.countsByWorker()).toEqual([{ worker: "worker-b", state: JobState.Running, count: 1 }]);
  });

  it("refuses a shipped state a running job cannot reach", () => {
    const { job } = follower.jobs.create(key);
    dispatch(job.id);
    const record = runOnWorker(job.id, () => undefined);
    expect(() => follower.shipped.apply({ ...record, job: { ...record.job, state: JobState.Cancelled } }, true)).toThrow(/cannot go to/);
  });
});
