/**
 * The distributed mode (issue 15) as a site runs it: a real Redis (Debian redis-server on loopback), a real Orthanc,
 * the follower (`node dist/cli.js serve` with CT_ENHANCE_REDIS_URL) and 3 worker processes (`node dist/cli.js
 * worker`). 30 small real series (20 slices of 128x128 each, fresh UIDs) arrive at once. One worker is killed (SIGKILL) in the
 * middle of a job, and the follower is killed and started again while the workers go on. At the end: 30 jobs, each
 * done once, spread over more than one worker; the killed worker's job taken over by another; in Orthanc exactly one
 * whole derived series per job and nothing else; results finished while the follower was down applied after its restart.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startLocalRedis, type LocalRedis } from "../../src/bench/local-redis.js";
import { localServiceEnvironment } from "../../src/bench/service-probe.js";
import { startWorkerProcess, type WorkerProcess } from "../../src/bench/worker-processes.js";
import { requireCtData } from "../helpers/ct-data.js";
import { startService, waitFor, type TestService } from "../helpers/ct-service.js";
import { type FreshSeries, freshSeriesCopies } from "../helpers/fresh-series.js";
import { REPO_ROOT, startOrthanc, type TestOrthanc } from "../helpers/orthanc.js";
import { requireOrthanc, requireTools } from "../helpers/system-tools.js";

const ready = requireCtData("lidc-idri-0002-ncct") && requireOrthanc() && requireTools("redis-server");
const SERIES = 30;
const SLICES = 20;
/** Every 4th row and column: 128x128 slices, so 30 jobs stay quick on 2 CPU cores. */
const MATRIX_FACTOR = 4;
const QUEUE = "ct-enhance-test";

interface Job {
  id: number; state: string; stage: string | null; attempts: number; worker: string | null; sourceSeriesUid: string;
  outputSeriesUid: string | null; errorMessage: string | null;
}
interface JobDetail extends Job { events: { kind: string; message: string }[] }
interface OrthancSeries { ID: string; Instances: string[]; MainDicomTags: { SeriesInstanceUID: string } }

describe.runIf(ready)("distributed mode: follower + 3 workers on a real Redis and Orthanc", () => {
  let redis: LocalRedis;
  let orthanc: TestOrthanc;
  let follower: TestService;
  let series: FreshSeries[] = [];
  const workers: WorkerProcess[] = [];
  let queue: Queue;
  let queueConnection: Redis;

  const setting = {
    CT_ENHANCE_PIPELINES_FILE: path.join(REPO_ROOT, "tests", "fixtures", "pipelines-syncta-only.json"),
    CT_ENHANCE_MODELS_DIR: path.join(REPO_ROOT, "tests", "fixtures", "operator-models"),
    CT_ENHANCE_QUEUE_NAME: QUEUE,
    // Short locks: a killed worker's job is taken over within seconds.
    CT_ENHANCE_QUEUE_LOCK_MS: "4000",
    CT_ENHANCE_QUEUE_STALLED_INTERVAL_MS: "2000",
    CT_ENHANCE_CPU_THREADS: "1",
    CT_ENHANCE_PROVIDER: "cpu",
    CT_ENHANCE_RETRY_DELAY_SECONDS: "2",
    // Each job's model holds its worker 1.5 s (the hang tests' fault hook, src/models/fault-stall.ts): on a quiet
    // machine a 20-slice 128x128 job otherwise ends in a fraction of a second, and all 30 ended before a kill could
    // land inside one (seen in a clean-clone run: 4 tries, none hit a running job).
    CT_ENHANCE_FAULT_STALL_INFERENCE_SLICES: String(SLICES),
    CT_ENHANCE_FAULT_STALL_INFERENCE_MS: "1500",
  };

  const startWorker = async (name: string): Promise<WorkerProcess> => {
    const folder = inject("serviceLogDir") ?? path.join(REPO_ROOT, ".test-output", "service-logs", "adhoc");
    mkdirSync(folder, { recursive: true });
    const env = {
      ...localServiceEnvironment(orthanc, { dataDir: "unused", port: 0, token: "unused", stableAgeSeconds: 3 }),
      ...setting,
      CT_ENHANCE_REDIS_URL: redis.url,
    };
    const worker = await startWorkerProcess(name, env, path.join(folder, `distributed-${name}-${Date.now()}.log`));
    workers.push(worker);
    return worker;
  };

  beforeAll(async () => {
    redis = await startLocalRedis();
    orthanc = await startOrthanc({ stableAgeSeconds: 2 });
    series = freshSeriesCopies("lidc-idri-0002-ncct", SLICES, SERIES, MATRIX_FACTOR);
    follower = await startService(orthanc, { ...setting, CT_ENHANCE_REDIS_URL: redis.url, CT_ENHANCE_RECONCILE_CRON: "off" });
    await Promise.all(["worker-1", "worker-2", "worker-3"].map((name) => startWorker(name)));
    queueConnection = new Redis(redis.url, { maxRetriesPerRequest: null });
    queueConnection.on("error", () => undefined); // Redis is stopped on purpose at the end
    queue = new Queue(QUEUE, { connection: queueConnection });
    queue.on("error", () => undefined);
  }, 180_000);

  afterAll(async () => {
    queueConnection?.disconnect();
    await Promise.all(workers.map((w) => w.stop("kill")));
    const stopping = Date.now();
    await follower?.stop();
    // A graceful stop while Redis is away ends promptly (it does not wait for the helper's SIGKILL after 60 s).
    expect(Date.now() - stopping).toBeLessThan(20_000);
    follower?.remove();
    await orthanc?.stop();
    await redis?.stop();
    for (const s of series) s.remove();
  });

  const jobs = async (): Promise<Job[]> => follower.api<Job[]>("/jobs");

  it(`processes ${SERIES} series exactly once over 3 workers, through a worker's kill -9 and the follower's restart`, async () => {
    const started = Date.now();
    await orthanc.upload(series.flatMap((s) => s.files));

    // Kill -9 the worker of a job in the middle of it (its queue entry still active when the worker is gone).
    let victim: { job: Job; worker: WorkerProcess } | undefined;
    for (let tries = 0; tries < 4 && !victim; tries += 1) {
      const target = await waitFor("a job in its fetch, probe or infer stage on a live worker", async () => {
        const live = workers.filter((w) => w.alive()).map((w) => w.name);
        return (await jobs()).find((j) => j.state === "running" && ["fetch", "probe", "infer"].includes(j.stage ?? "") && live.includes(j.worker ?? ""));
      }, 120_000, follower);
      const worker = workers.find((w) => w.name === target.worker && w.alive())!;
      await worker.stop("kill");
      const entry = await queue.getJob(`ledger-${target.id}-attempt-${target.attempts}`);
      if (entry && (await entry.getState()) === "active") victim = { job: target, worker };
      else await startWorker(`${worker.name}-again`); // it had just finished: this kill hit no job; try again
    }
    expect(victim, "a kill landed in the middle of a job").toBeDefined();
    console.info(`distributed test: killed ${victim!.worker.name} during job ${victim!.job.id} (stage ${victim!.job.stage})`);

    // The follower dies while the workers go on; what they finish meanwhile waits in Redis.
    await waitFor("a third of the jobs done", async () => ((await jobs()).filter((j) => j.state === "done").length >= SERIES / 3 ? true : undefined),
      150_000, follower);
    await follower.stop("kill");
    const doneWhileDown = await waitFor("a result finished while the follower is down", async () => {
      const n = await queue.getCompletedCount();
      return n > 0 ? n : undefined;
    }, 60_000);
    await follower.start();

    const all = await waitFor(`all ${SERIES} jobs finished`, async () => {
      const list = await jobs();
      return list.length === SERIES && list.every((j) => !["queued", "running", "retry-wait"].includes(j.state)) ? list : undefined;
    }, 240_000, follower);
    const seconds = (Date.now() - started) / 1000;

    // Every job done, once: one "done" in its timeline, one output series recorded.
    for (const job of all) expect(job.state, `job ${job.id}: ${job.errorMessage ?? ""}`).toBe("done");
    const details = await Promise.all(all.map((j) => follower.api<JobDetail>(`/jobs/${j.id}`)));
    for (const d of details) expect(d.events.filter((e) => e.kind === "done"), `job ${d.id}`).toHaveLength(1);
    expect(new Set(all.map((j) => j.sourceSeriesUid)).size).toBe(SERIES);

    // Spread over the workers; the killed worker's job finished by another, which says it took it over.
    const byWorker = new Map<string, number>();
    for (const job of all) byWorker.set(job.worker ?? "none", (byWorker.get(job.worker ?? "none") ?? 0) + 1);
    console.info(`distributed test: ${SERIES} jobs in ${seconds.toFixed(1)} s; by worker ${JSON.stringify(Object.fromEntries(byWorker))}; ` +
      `${doneWhileDown} result(s) waited in Redis while the follower was down`);
    expect(byWorker.has("none")).toBe(false);
    expect(byWorker.size).toBeGreaterThan(1);
    const taken = details.find((d) => d.id === victim!.job.id)!;
    expect(taken.worker).not.toBe(victim!.worker.name);
    expect(taken.events.some((e) => e.kind === "taken-over"), JSON.stringify(taken.events)).toBe(true);

    // Orthanc: the sources and exactly one whole output series per job, nothing else.
    const inOrthanc = await orthanc.rest<OrthancSeries[]>("/series?expand");
    const outputs = new Set(all.map((j) => j.outputSeriesUid!));
    const sources = new Set(series.map((s) => s.seriesInstanceUid));
    expect(inOrthanc).toHaveLength(2 * SERIES);
    for (const s of inOrthanc) {
      const uid = s.MainDicomTags.SeriesInstanceUID;
      expect(sources.has(uid) || outputs.has(uid), `series ${uid} is neither a source nor a job's output`).toBe(true);
      expect(s.Instances, `series ${uid}`).toHaveLength(SLICES);
    }
    expect(inOrthanc.filter((s) => outputs.has(s.MainDicomTags.SeriesInstanceUID))).toHaveLength(SERIES);

    // Nothing left in the queue; the API shows the workers and their jobs.
    await waitFor("the queue emptied by the follower", async () => {
      const counts = await queue.getJobCounts("waiting", "active", "delayed", "completed", "failed");
      return Object.values(counts).every((n) => n === 0) ? true : undefined;
    }, 20_000, follower);
    const metrics = await (await fetch(`${follower.apiUrl}/metrics`, { headers: { Authorization: `Bearer ${follower.token}` } })).text();
    for (const [worker, count] of byWorker) {
      expect(metrics).toContain(`ct_enhance_worker_jobs{worker="${worker}",state="done"} ${count}`);
    }
    expect(metrics).toContain("ct_enhance_redis_up 1");
    const health = await (await fetch(`${follower.apiUrl}/health`)).json() as { status: string; queue?: { reachable: boolean; workers: string[] } };
    expect(health.queue?.reachable).toBe(true);
    expect(health.queue?.workers.length).toBe(workers.filter((w) => w.alive()).length);

    // Redis gone: the follower answers, degraded, naming it.
    await redis.stop();
    const degraded = await waitFor("/health degraded by Redis", async () => {
      const body = await (await fetch(`${follower.apiUrl}/health`)).json() as { status: string; queue?: { reachable: boolean; error?: string } };
      return body.status === "degraded" && body.queue?.reachable === false ? body : undefined;
    }, 30_000, follower);
    expect(degraded.queue?.error).toBeTruthy();
  }, 600_000);
});
