/**
 * Hangs (issue 14), through the built service and a real Orthanc reached through a TCP proxy that can stop answering:
 * - a model that hangs (the worker's stall fault hook, for a 21-slice series) fails its job at the infer stage's
 *   timeout as retryable, naming the stage; the stuck worker is replaced and the next series (20 slices) runs to done:
 *   the queue does not stall behind the job;
 * - Orthanc stops answering in the middle of a WADO-RS response: the fetch stage's timeout fails the job as retryable,
 *   naming the stage; when Orthanc answers again the retry completes it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireCtData } from "../helpers/ct-data.js";
import { contiguousSubset, type SeriesSubset } from "../helpers/ct-subset.js";
import { OPERATOR_TEST_PIPELINES, startService, type TestService, waitFor } from "../helpers/ct-service.js";
import { startOrthanc, type TestOrthanc } from "../helpers/orthanc.js";
import { type PausingProxy, startPausingProxy } from "../helpers/pausing-proxy.js";
import { requireOrthanc } from "../helpers/system-tools.js";

const ready = requireCtData("lidc-idri-0002-ncct", "ricord-ncct-jpegls") && requireOrthanc();

interface Job {
  id: number; sourceOrthancId: string; state: string; stage: string | null; run: number; attempts: number;
  errorStage: string | null; errorMessage: string | null; errorRetryable: boolean | null;
}

describe.runIf(ready)("hangs: stage timeouts, a stuck model, an Orthanc that stops mid-stream (real Orthanc, built service)", () => {
  let orthanc: TestOrthanc;
  let proxy: PausingProxy;
  let service: TestService;
  let stalling: SeriesSubset;
  let running: SeriesSubset;

  beforeAll(async () => {
    stalling = contiguousSubset("lidc-idri-0002-ncct", 21);
    running = contiguousSubset("ricord-ncct-jpegls", 20);
    orthanc = await startOrthanc({ stableAgeSeconds: 2 });
    proxy = await startPausingProxy(orthanc.url);
    service = await startService({ ...orthanc, url: proxy.url }, {
      ...OPERATOR_TEST_PIPELINES,
      CT_ENHANCE_RECONCILE_CRON: "off",
      CT_ENHANCE_FAULT_STALL_INFERENCE_SLICES: "21",
      // 20 slices of CPU inference take ~10 s here (2 shared cores): 40 s leaves room; the fetch takes < 1 s.
      CT_ENHANCE_INFER_TIMEOUT_SECONDS: "20",
      CT_ENHANCE_INFER_TIMEOUT_PER_SLICE_SECONDS: "1",
      CT_ENHANCE_FETCH_TIMEOUT_SECONDS: "4",
      CT_ENHANCE_FETCH_TIMEOUT_PER_SLICE_SECONDS: "0.1",
    });
  }, 120_000);

  afterAll(async () => {
    await service?.stop("kill");
    service?.remove();
    await proxy?.close();
    await orthanc?.stop();
    stalling?.remove();
    running?.remove();
  });

  const jobOf = async (orthancSeriesId: string): Promise<Job | undefined> =>
    (await service.api<Job[]>("/jobs")).find((j) => j.sourceOrthancId === orthancSeriesId);

  it("a stuck model: the job fails at the infer timeout (retryable), the worker is replaced, the next series runs", async () => {
    const started = Date.now();
    const stuckId = (await orthanc.uploadFolder(stalling.folder))[0]!;
    await waitFor("the 21-slice job in infer", async () => ((await jobOf(stuckId))?.stage === "infer" ? true : undefined), 90_000, service);
    const nextId = (await orthanc.uploadFolder(running.folder))[0]!;
    const stuck = await waitFor("the stuck job's timeout", async () => {
      const job = await jobOf(stuckId);
      return job?.state === "retry-wait" ? job : undefined;
    }, 90_000, service);
    expect(stuck.errorStage).toBe("infer");
    expect(stuck.errorRetryable).toBe(true);
    expect(stuck.errorMessage).toMatch(/infer stage's timeout of 41 s .*stageTimeouts\.infer.*the worker was replaced/);
    // It would stall again on every retry: an operator cancels it, as they would a series that hangs the model.
    await service.api(`/jobs/${stuck.id}/cancel`, { method: "POST" });

    const next = await waitFor("the next series done", async () => {
      const job = await jobOf(nextId);
      if (job?.state === "failed" || job?.state === "retry-wait") throw new Error(`next job ${job.state}: ${job.errorMessage}`);
      return job?.state === "done" ? job : undefined;
    }, 120_000, service);
    expect(next.attempts).toBe(1);
    console.info(`hangs: stuck model timed out and the next series was done ${((Date.now() - started) / 1000).toFixed(1)} s after the upload`);
  }, 300_000);

  it("Orthanc stops answering mid-stream: the fetch times out (retryable), and the retry completes once it answers", async () => {
    const series = (await service.api<Job[]>("/jobs")).find((j) => j.state === "done")!.sourceOrthancId;
    // 20 slices of 512x512 are ~10 MB over WADO-RS: hold everything once the response has carried 2 MB.
    proxy.pauseAfter(2 * 1024 * 1024);
    await service.api(`/series/${series}/rerun`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ pipeline: "ncct-syncta" }) });
    await Promise.race([proxy.paused(), new Promise((_, reject) => setTimeout(() => reject(new Error("the proxy never paused")), 60_000))]);
    const pausedAt = Date.now();
    const timedOut = await waitFor("the fetch timeout", async () => {
      const job = await jobOf(series);
      return job?.state === "retry-wait" ? job : undefined;
    }, 30_000, service);
    expect(timedOut.run).toBe(2);
    expect(timedOut.errorStage).toBe("fetch");
    expect(timedOut.errorRetryable).toBe(true);
    expect(timedOut.errorMessage).toMatch(/^fetching 20 instances over WADO-RS took longer than the fetch stage's timeout of 6 s/);
    const waited = (Date.now() - pausedAt) / 1000;
    expect(waited).toBeLessThan(15);

    proxy.resume();
    const done = await waitFor("the retry done", async () => {
      const job = await jobOf(series);
      if (job?.state === "failed") throw new Error(`job failed: ${job.errorMessage}`);
      return job?.state === "done" ? job : undefined;
    }, 120_000, service);
    expect(done.attempts).toBe(2);
    console.info(`hangs: paused fetch failed after ${waited.toFixed(1)} s and the retry completed`);
  }, 300_000);
});
