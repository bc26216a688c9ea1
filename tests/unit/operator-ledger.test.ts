import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { renderMetrics } from "../../src/api/metrics.js";
import { JobState } from "../../src/jobs/job-records.js";
import { Ledger } from "../../src/jobs/ledger.js";
import { JobStages } from "../../src/pipeline/job-stages.js";
import { Stage } from "../../src/stage-error.js";

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
    const { jobs } = ledger;
    const { job } = jobs.create(key);
    expect(jobs.cancel(job.id, "test")).toBe(true);
    expect(jobs.get(job.id)!.state).toBe(JobState.Cancelled);
    expect(jobs.cancel(job.id, "again")).toBe(false);
    expect(jobs.retry(job.id, "test", true)).toBe(true);
    jobs.start(job.id);
    expect(jobs.cancel(job.id, "running")).toBe(false);
    expect(jobs.retry(job.id, "running", true)).toBe(false);
    jobs.fail(job.id, { stage: "fetch", message: "Orthanc down", retryable: true }, new Date(Date.now() - 1000));
    expect(jobs.dueRetries().map((j) => j.id)).toEqual([job.id]);
    expect(jobs.events(job.id).map((e) => e.kind)).toEqual(["queued", "cancelled", "retry", "started", "retry-wait"]);
  });

  it("deletes finished jobs older than the cutoff with their timelines, and keeps the rest", () => {
    const { jobs } = ledger;
    const old = jobs.create(key).job;
    const waiting = jobs.create({ ...key, sourceSeriesUid: "1.2.4" }).job;
    jobs.start(old.id);
    jobs.finish(old.id, "done");
    jobs.recordOutputSeries(old.id, ["2.25.5"]);
    expect(jobs.deleteFinishedBefore(new Date(Date.now() - 60_000))).toEqual([]);
    const deleted = jobs.deleteFinishedBefore(new Date(Date.now() + 1000));
    expect(deleted.map((j) => j.id)).toEqual([old.id]);
    expect(jobs.get(old.id)).toBeUndefined();
    expect(jobs.events(old.id)).toEqual([]);
    expect(jobs.isOutputSeries("2.25.5")).toBe(true); // never process our own output, however old
    expect(jobs.get(waiting.id)?.state).toBe(JobState.Queued);
  });

  it("records how long each stage took and renders Prometheus text a parser reads", () => {
    const { job } = ledger.jobs.create(key);
    ledger.jobs.start(job.id);
    const stages = new JobStages(ledger, job.id);
    stages.enter(Stage.Fetch);
    stages.enter(Stage.Infer);
    stages.setProvider("cpu");
    stages.enter(Stage.Store);
    stages.end();
    stages.end(); // once only
    ledger.jobs.finish(job.id, "done");
    ledger.jobs.create({ ...key, sourceSeriesUid: "9.9" });
    const stats = ledger.stageDurations.stats();
    expect(stats.map((s) => [s.stage, s.provider])).toEqual([["fetch", ""], ["infer", "cpu"], ["store", ""]]);
    expect(stats.every((s) => s.count === 1 && s.buckets.every((n) => n === 1))).toBe(true);
    expect(ledger.jobs.get(job.id)?.provider).toBe("cpu");

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
