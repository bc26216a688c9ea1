/**
 * The API as an operator and Prometheus use it, against a real Orthanc and the built service: the token guards
 * everything but the probes, /metrics parses as Prometheus text and counts what happened, a job has its timeline
 * and a before/after PNG, schedules are listed and can run now, and wrong requests get answers that say why.
 */
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireCtData } from "../helpers/ct-data.js";
import { contiguousSubset, type SeriesSubset } from "../helpers/ct-subset.js";
import { startService, waitFor, type TestService, OPERATOR_TEST_PIPELINES } from "../helpers/ct-service.js";
import { startOrthanc, type TestOrthanc } from "../helpers/orthanc.js";
import { requireOrthanc } from "../helpers/system-tools.js";

const ready = requireCtData("lidc-idri-0002-ncct") && requireOrthanc();

interface Job { id: number; state: string; run: number; provider: string | null; outputSeriesUid: string | null; sourceOrthancId: string }
interface PromMetric { name: string; type: string; metrics: { value?: string; labels?: Record<string, string>; buckets?: Record<string, string>; count?: string; sum?: string }[] }

describe.runIf(ready)("the ct-enhance API (real Orthanc, built service)", () => {
  let orthanc: TestOrthanc;
  let service: TestService;
  let subset: SeriesSubset;
  let job: Job;

  beforeAll(async () => {
    subset = contiguousSubset("lidc-idri-0002-ncct", 24);
    orthanc = await startOrthanc({ stableAgeSeconds: 2 });
    service = await startService(orthanc, { ...OPERATOR_TEST_PIPELINES });
    await orthanc.uploadFolder(subset.folder);
    job = await waitFor("the 24-slice job to be done", async () => {
      const jobs = await service.api<Job[]>("/jobs");
      if (jobs[0]?.state === "failed") throw new Error("job failed");
      return jobs[0]?.state === "done" ? jobs[0] : undefined;
    }, 120_000, service);
  }, 180_000);

  afterAll(async () => {
    await service?.stop();
    service?.remove();
    await orthanc?.stop();
    subset?.remove();
  });

  it("answers 401 without the token, or with a wrong one, on everything but the probes", async () => {
    for (const route of ["/jobs", "/metrics", "/schedules", "/models", `/jobs/${job.id}`]) {
      expect((await fetch(`${service.apiUrl}${route}`)).status, route).toBe(401);
      const wrong = await fetch(`${service.apiUrl}${route}`, { headers: { Authorization: "Bearer not-the-token" } });
      expect(wrong.status, route).toBe(401);
    }
    const rerun = await fetch(`${service.apiUrl}/series/${job.sourceOrthancId}/rerun`, { method: "POST" });
    expect(rerun.status).toBe(401);
    const health = await fetch(`${service.apiUrl}/health`);
    expect(health.status).toBe(200);
    const healthBody = (await health.json()) as { orthanc: { reachable: boolean; version: string }; eventLoop: { delayMaxMsLastMinute: number } };
    expect(healthBody.orthanc).toMatchObject({ reachable: true, version: expect.stringMatching(/^1\./) });
    expect(healthBody.eventLoop.delayMaxMsLastMinute).toBeGreaterThanOrEqual(0);
    expect((await fetch(`${service.apiUrl}/ready`)).status).toBe(200);
    const openapi = (await (await fetch(`${service.apiUrl}/openapi.json`)).json()) as { openapi: string; paths: Record<string, unknown> };
    expect(openapi.openapi).toMatch(/^3\./);
    expect(Object.keys(openapi.paths)).toEqual(expect.arrayContaining(["/jobs", "/series/{series}/rerun", "/metrics", "/schedules"]));
  });

  it("serves /metrics that a Prometheus text-format parser reads, counting the done job and its stages", async () => {
    const response = await fetch(`${service.apiUrl}/metrics`, { headers: { Authorization: `Bearer ${service.token}` } });
    expect(response.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await response.text();
    const families = parsePrometheusTextFormat(text) as PromMetric[];
    const family = (name: string) => families.find((f) => f.name === name)!;
    const jobs = family("ct_enhance_jobs");
    expect(jobs.type).toBe("GAUGE");
    expect(jobs.metrics.find((m) => m.labels?.state === "done")?.value).toBe("1");
    expect(family("ct_enhance_queue_depth").metrics[0]?.value).toBe("0");
    expect(Number(family("ct_enhance_event_loop_delay_max_seconds").metrics[0]?.value)).toBeGreaterThanOrEqual(0);
    expect(family("ct_enhance_stage_duration_seconds").type).toBe("HISTOGRAM");
    expect(family("ct_enhance_inference_duration_seconds").type).toBe("HISTOGRAM");
    // This parser folds the label sets of a histogram into one; read the labelled samples from the lines themselves.
    const sample = (name: string, labels: string) => Number(new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, "m").exec(text)?.[1]);
    for (const stage of ["fetch", "infer", "store"]) {
      expect(sample("ct_enhance_stage_duration_seconds_count", `stage="${stage}"`), stage).toBe(1);
      expect(sample("ct_enhance_stage_duration_seconds_bucket", `stage="${stage}",le="\\+Inf"`), stage).toBe(1);
    }
    expect(sample("ct_enhance_inference_duration_seconds_count", 'provider="cpu"')).toBe(1);
    expect(sample("ct_enhance_inference_duration_seconds_sum", 'provider="cpu"')).toBeGreaterThan(1); // 24 CPU slices take seconds
    expect(family("ct_enhance_schedule_runs_total").metrics.map((m) => m.labels?.schedule).sort()).toEqual(["off-peak", "reconcile", "retention", "retry"]);
  });

  it("gives a job with its timeline and a before/after PNG of the middle slice", async () => {
    const detail = await service.api<Job & { events: { kind: string }[]; preview: string }>(`/jobs/${job.id}`);
    expect(detail.events.map((e) => e.kind)).toEqual(expect.arrayContaining(["queued", "started", "inferred", "preview", "done"]));
    expect(detail.preview).toBe(`/jobs/${job.id}/preview.png`);
    const png = Buffer.from(await (await fetch(`${service.apiUrl}${detail.preview}`, { headers: { Authorization: `Bearer ${service.token}` } })).arrayBuffer());
    expect(png.subarray(0, 8).toString("hex")).toBe("89504e470d0a1a0a");
    expect(png.subarray(12, 16).toString("ascii")).toBe("IHDR");
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([512 * 2 + 4, 512]);
  });

  it("lists schedules and runs one now; says why a request cannot be done", async () => {
    const schedules = await service.api<{ name: string; cron: string; nextRun: string | null; runs: number }[]>("/schedules");
    expect(schedules.map((s) => s.name)).toEqual(["reconcile", "retry", "retention", "off-peak"]);
    expect(schedules.every((s) => s.nextRun !== null)).toBe(true);
    const run = await service.api<{ ok: boolean; summary: { deletedJobs: number[] } }>("/schedules/retention/run", { method: "POST" });
    expect(run.ok).toBe(true);
    expect(run.summary.deletedJobs).toEqual([]); // the job is minutes old, retention is 90 days

    const post = (path: string, body?: object) => fetch(`${service.apiUrl}${path}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${service.token}`, "Content-Type": "application/json" },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const cancelDone = await post(`/jobs/${job.id}/cancel`);
    expect(cancelDone.status).toBe(409);
    expect(((await cancelDone.json()) as { error: string }).error).toMatch(/only queued or retry-wait/);
    expect((await post(`/jobs/${job.id}/retry`)).status).toBe(409);
    expect((await post("/jobs/99999/retry")).status).toBe(404);
    expect((await post(`/series/${job.sourceOrthancId}/rerun`, { pipeline: "no-such-pipeline" })).status).toBe(400);
    expect((await post("/series/1.2.3.4.5.6/rerun", {})).status).toBe(404);
    const models = await service.api<{ id: string }[]>("/models");
    const pipelines = await service.api<{ id: string; model: string }[]>("/pipelines");
    expect(pipelines.every((p) => models.some((m) => m.id === p.model))).toBe(true);
  });

  it("re-runs a done series as a new run with new output UIDs, and can cancel it while queued", async () => {
    const post = (path: string, body: object) => fetch(`${service.apiUrl}${path}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${service.token}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = await post(`/series/${job.sourceOrthancId}/rerun`, { requestedBy: "api test" });
    expect(answer.status).toBe(202);
    const result = (await answer.json()) as { jobs: { outcome: string; job: Job }[] };
    expect(result.jobs[0]?.outcome).toBe("requeued");
    expect(result.jobs[0]?.job.run).toBe(2);
    // Either we catch it queued (and cancel it) or the queue took it first (and cancel says why not).
    const cancel = await post(`/jobs/${job.id}/cancel`, {});
    const after = await service.api<Job>(`/jobs/${job.id}`);
    if (cancel.status === 200) expect(after.state).toBe("cancelled");
    else expect(["running", "done"]).toContain(after.state);
    const finished = await waitFor("the re-run to settle", async () => {
      const current = await service.api<Job>(`/jobs/${job.id}`);
      return ["done", "cancelled"].includes(current.state) ? current : undefined;
    }, 90_000, service);
    if (finished.state === "done") expect(finished.outputSeriesUid).not.toBe(job.outputSeriesUid);
  }, 120_000);
});
