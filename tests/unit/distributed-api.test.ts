/**
 * What the API shows of the distributed mode (README "Scaling out"): /health degraded, not down, when Redis did not
 * answer the follower's last pass, with the queue's counts and workers; /metrics counting jobs per worker and the
 * queue's entries; /jobs naming each job's worker. And the configuration: CT_ENHANCE_REDIS_URL must be a Redis URL,
 * and its password is withheld from every log line.
 */
import { mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { QueueStatus } from "../../src/api/api-deps.js";
import { createApi, listen } from "../../src/api/server.js";
import { ConfigError, loadConfig } from "../../src/config.js";
import { JobState } from "../../src/jobs/job-records.js";
import { Ledger } from "../../src/jobs/ledger.js";
import type { OrthancClient } from "../../src/orthanc/rest.js";
import { redact, withholdConfigSecrets } from "../../src/redact.js";

describe("the API in the distributed mode", () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), "ct-enhance-dist-api-"));
  const ledger = new Ledger(dataDir);
  const orthanc = { system: async () => ({ Version: "1.10.1", Name: "test" }) } as unknown as OrthancClient;
  let queue: QueueStatus = { reachable: true, checkedAt: new Date().toISOString(), waiting: 2, active: 3, delayed: 1, workers: ["gpu-a0", "gpu-a1", "gpu-b0"] };
  let server: Server;
  let base: string;
  const get = async (route: string) => fetch(`${base}${route}`, { headers: { Authorization: "Bearer secret" } });

  beforeAll(async () => {
    const config = loadConfig(undefined, { CT_ENHANCE_DATA_DIR: dataDir, CT_ENHANCE_API_TOKEN: "secret", CT_ENHANCE_REDIS_URL: "redis://127.0.0.1:6379" });
    server = await listen(createApi({ config, ledger, orthanc, queueStatus: () => queue }), "127.0.0.1", 0);
    const address = server.address();
    base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    for (const [uid, worker] of [["1.1", "gpu-a0"], ["1.2", "gpu-a0"], ["1.3", "gpu-b0"]] as const) {
      const { job } = ledger.jobs.create({ sourceOrthancId: uid, sourceSeriesUid: uid, studyUid: "1", pipeline: "p", modelId: "m", modelVersion: "1" });
      ledger.jobs.transition(job.id, [JobState.Queued], JobState.Running, { kind: "dispatched", message: "test" }, { attempts: "next" });
      ledger.shipped.progress(job.id, 1, worker, { stage: "infer", slicesDone: 1, slicesTotal: 2, provider: "cuda" });
    }
    ledger.jobs.finish(1, "stored");
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    ledger.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("names each job's worker on /jobs", async () => {
    const jobs = (await (await get("/jobs")).json()) as { id: number; worker: string | null }[];
    expect(jobs.map((j) => j.worker)).toEqual(["gpu-a0", "gpu-a0", "gpu-b0"]);
  });

  it("counts jobs per worker and the queue's entries on /metrics", async () => {
    const text = await (await get("/metrics")).text();
    expect(text).toContain('ct_enhance_worker_jobs{worker="gpu-a0",state="done"} 1');
    expect(text).toContain('ct_enhance_worker_jobs{worker="gpu-a0",state="running"} 1');
    expect(text).toContain('ct_enhance_worker_jobs{worker="gpu-b0",state="running"} 1');
    expect(text).toContain('ct_enhance_worker_queue_entries{state="waiting"} 2');
    expect(text).toContain('ct_enhance_worker_queue_entries{state="active"} 3');
    expect(text).toContain("ct_enhance_workers 3");
    expect(text).toContain("ct_enhance_redis_up 1");
  });

  it("answers /health 200, degraded with the reason, while Redis does not answer", async () => {
    const fine = (await (await fetch(`${base}/health`)).json()) as { queue: QueueStatus };
    expect(fine.queue.workers).toEqual(["gpu-a0", "gpu-a1", "gpu-b0"]);
    queue = { ...queue, reachable: false, error: "connect ECONNREFUSED 127.0.0.1:6379" };
    const response = await fetch(`${base}/health`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { status: string; queue: QueueStatus };
    expect(body.status).toBe("degraded");
    expect(body.queue).toMatchObject({ reachable: false, error: "connect ECONNREFUSED 127.0.0.1:6379" });
    expect(await (await get("/metrics")).text()).toContain("ct_enhance_redis_up 0");
  });
});

describe("the distributed mode's configuration", () => {
  it("takes a redis:// URL, refuses another, and withholds its password from logs", () => {
    expect(loadConfig(undefined, { CT_ENHANCE_REDIS_URL: "redis://127.0.0.1:6390/2" }).queue.redisUrl).toBe("redis://127.0.0.1:6390/2");
    expect(loadConfig(undefined, {}).queue.redisUrl).toBeUndefined();
    expect(() => loadConfig(undefined, { CT_ENHANCE_REDIS_URL: "http://127.0.0.1:6379" })).toThrow(ConfigError);
    expect(() => loadConfig(undefined, { CT_ENHANCE_REDIS_URL: "http://127.0.0.1:6379" })).toThrow(/queue\.redisUrl \(env CT_ENHANCE_REDIS_URL\)/);
    const config = loadConfig(undefined, { CT_ENHANCE_REDIS_URL: "redis://:s3cret-redis-pass@redis:6379" });
    withholdConfigSecrets(config);
    expect(redact("connecting with s3cret-redis-pass")).not.toContain("s3cret-redis-pass");
  });
});
