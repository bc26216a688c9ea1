import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { renderMetrics } from "../../src/api/metrics.js";
import { JobState, Ledger } from "../../src/jobs/ledger.js";

describe("ledger: operator actions, retention and metrics", () => {
  let dir: string;
  let ledger: Ledger;
  const key = { sourceOrthancId: "o1", sourceSeriesUid: "1.2.3", studyUid: "1.2", pipeline: "p", modelId: "m", modelVersion: "1" };

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "ledger-ops-"));
    ledger = new Ledger(dir);
  });
  afterEach(() => {
    ledger.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("cancels only waiting jobs, and retries only failed, cancelled or retry-wait ones", () => {
    const { job } = ledger.createJob(key);
    expect(ledger.cancelJob(job.id, "test").cancelled).toBe(true);
    expect(ledger.job(job.id)!.state).toBe(JobState.Cancelled);
    expect(ledger.cancelJob(job.id, "again").cancelled).toBe(false);
    expect(ledger.retryJob(job.id, "test", true).queued).toBe(true);
    ledger.startJob(job.id);
    expect(ledger.cancelJob(job.id, "running").cancelled).toBe(false);
    expect(ledger.retryJob(job.id, "running", true).queued).toBe(false);
    ledger.failJob(job.id, { stage: "fetch", message: "Orthanc down", retryable: true }, new Date(Date.now() - 1000));
    expect(ledger.dueRetries().map((j) => j.id)).toEqual([job.id]);
    expect(ledger.events(job.id).map((e) => e.kind)).toEqual(["queued", "cancelled", "retry", "started", "retry-wait"]);
  });

  it("deletes finished jobs older than the cutoff with their timelines, and keeps the rest", () => {
    const old = ledger.createJob(key).job;
    const waiting = ledger.createJob({ ...key, sourceSeriesUid: "1.2.4" }).job;
    ledger.startJob(old.id);
    ledger.finishJob(old.id, "done");
    expect(ledger.deleteFinishedJobsBefore(new Date(Date.now() - 60_000)).jobs).toEqual([]);
    const deleted = ledger.deleteFinishedJobsBefore(new Date(Date.now() + 1000));
    expect(deleted.jobs.map((j) => j.id)).toEqual([old.id]);
    expect(ledger.job(old.id)).toBeUndefined();
    expect(ledger.events(old.id)).toEqual([]);
    expect(ledger.job(waiting.id)?.state).toBe(JobState.Queued);
  });

  it("records how long each stage took and renders Prometheus text a parser reads", () => {
    const { job } = ledger.createJob(key);
    ledger.startJob(job.id);
    ledger.setStage(job.id, "fetch");
    ledger.setStage(job.id, "infer");
    ledger.setProvider(job.id, "cpu");
    ledger.setStage(job.id, "store");
    ledger.finishJob(job.id, "done");
    ledger.createJob({ ...key, sourceSeriesUid: "9.9" });
    const stats = ledger.stageTimingStats([0.5, 60]);
    expect(stats.map((s) => s.stage).sort()).toEqual(["fetch", "infer", "store"]);
    expect(stats.every((s) => s.count === 1 && s.buckets[1] === 1)).toBe(true);

    const text = renderMetrics({ ledger, jobRunning: () => false });
    const families = parsePrometheusTextFormat(text) as { name: string; metrics: { value?: string; labels?: Record<string, string> }[] }[];
    const jobs = families.find((f) => f.name === "ct_enhance_jobs")!;
    expect(jobs.metrics.find((m) => m.labels?.state === "done")?.value).toBe("1");
    expect(jobs.metrics.find((m) => m.labels?.state === "queued")?.value).toBe("1");
    expect(families.find((f) => f.name === "ct_enhance_queue_depth")!.metrics[0]!.value).toBe("1");
    expect(text).toMatch(/^ct_enhance_inference_duration_seconds_count\{provider="cpu"\} 1$/m);
    expect(text).toMatch(/^ct_enhance_stage_duration_seconds_bucket\{stage="store",le="\+Inf"\} 1$/m);
  });
});
