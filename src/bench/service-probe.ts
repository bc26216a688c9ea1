/**
 * The service as it runs (`node dist/cli.js serve`, its own process) on a fresh Orthanc: the series is uploaded, the
 * service finds it by itself, waits for it to be stable and processes it, while this process asks GET /health every
 * 50 ms and notes how long each answer took and in which stage of the job it fell. Shows whether the event loop stays
 * free while the worker infers.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PACKAGE_ROOT } from "../config.js";
import { freePort, type LocalOrthanc } from "./local-orthanc.js";

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
  /** Answers slower than 100 ms (the target), or errors. */
  over100Ms: number;
}

export interface ServiceProbeResult {
  slices: number;
  provider: string | null;
  state: string;
  /** Upload finished -> job created (Orthanc StableAge and the service's stable age). */
  waitForStableMs: number;
  /** Job created -> done, as the service reports it. */
  jobMs: number;
  /** Upload finished -> derived series stored. */
  uploadToDoneMs: number;
  stageMs: Record<string, number>;
  health: { all: LatencySummary; duringInfer: LatencySummary; slowest: { stage: string; secondsIntoStage: number; ms: number }[] };
  events: { at: string; kind: string; message: string }[];
  config: { orthancStableAgeSeconds: number; serviceStableAgeSeconds: number; cpuThreads: number; provider: string };
}

interface JobView {
  id: number;
  state: string;
  stage: string | null;
  provider: string | null;
  slicesTotal: number;
  createdAt: string;
  updatedAt: string;
  events?: { at: string; kind: string; message: string }[];
}

export function summarise(latencies: number[]): LatencySummary {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : 0);
  return {
    count: sorted.length,
    p50Ms: round(at(0.5)),
    p95Ms: round(at(0.95)),
    maxMs: round(sorted.at(-1) ?? 0),
    over100Ms: sorted.filter((v) => v > 100).length,
  };
}

const round = (v: number) => Math.round(v * 10) / 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function probeService(
  orthanc: LocalOrthanc,
  files: string[],
  options: { provider: string; cpuThreads: number; orthancStableAgeSeconds: number; timeoutMs: number },
): Promise<ServiceProbeResult> {
  const dataDir = mkdtempSync(path.join(tmpdir(), "ct-enhance-bench-data-"));
  const port = await freePort();
  const apiUrl = `http://127.0.0.1:${port}`;
  const token = `bench-${Math.random().toString(36).slice(2)}`;
  const serviceStableAgeSeconds = 3;
  const env = {
    ...process.env,
    CT_ENHANCE_ORTHANC_URL: orthanc.url,
    CT_ENHANCE_ORTHANC_USERNAME: orthanc.username,
    CT_ENHANCE_ORTHANC_PASSWORD: orthanc.password,
    CT_ENHANCE_DATA_DIR: dataDir,
    CT_ENHANCE_PORT: String(port),
    CT_ENHANCE_API_TOKEN: token,
    CT_ENHANCE_POLL_INTERVAL_MS: "250",
    CT_ENHANCE_STABLE_AGE_SECONDS: String(serviceStableAgeSeconds),
    CT_ENHANCE_PROVIDER: options.provider,
    CT_ENHANCE_CPU_THREADS: String(options.cpuThreads),
  };
  let output = "";
  const child: ChildProcess = spawn(process.execPath, [path.join(PACKAGE_ROOT, "dist", "cli.js"), "serve"], { env, cwd: dataDir });
  child.stdout?.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  child.stderr?.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  const api = async <T>(pathAndQuery: string): Promise<T> => {
    const response = await fetch(`${apiUrl}${pathAndQuery}`, { headers: { Authorization: `Bearer ${token}` } });
    if (!response.ok) throw new Error(`ct-enhance ${response.status} for ${pathAndQuery}: ${await response.text()}`);
    return (await response.json()) as T;
  };

  try {
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`ct-enhance exited at start:\n${output.slice(-3000)}`);
      const ok = await fetch(`${apiUrl}/health`).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`ct-enhance did not answer /health within 120 s:\n${output.slice(-3000)}`);
      await sleep(200);
    }

    let stage = "upload";
    const samples: { stage: string; ms: number; at: number }[] = [];
    let probing = true;
    const prober = (async () => {
      while (probing) {
        const tick = performance.now();
        try {
          const response = await fetch(`${apiUrl}/health`, { signal: AbortSignal.timeout(5000) });
          await response.arrayBuffer();
          samples.push({ stage, ms: performance.now() - tick, at: Date.now() });
        } catch {
          samples.push({ stage, ms: 5000, at: Date.now() });
        }
        await sleep(Math.max(0, 50 - (performance.now() - tick)));
      }
    })();

    const uploaded = await orthanc.upload(files);
    const uploadDone = Date.now();
    stage = "wait-for-stable";
    let job: JobView | undefined;
    const stageStarted: Record<string, number> = {};
    while (Date.now() - uploadDone < options.timeoutMs) {
      const jobs = await api<JobView[] | { jobs: JobView[] }>("/jobs");
      const list = Array.isArray(jobs) ? jobs : jobs.jobs;
      job = list[0];
      if (job) {
        const now = job.state === "running" && job.stage ? job.stage : job.state;
        if (now !== stage) {
          stage = now;
          stageStarted[now] ??= Date.now();
        }
        if (job.state === "done" || job.state === "failed") break;
      } else if (Date.now() - uploadDone > 90_000 + options.orthancStableAgeSeconds * 1000) {
        throw new Error(`the service made no job within 90 s of the series becoming stable; see GET /decisions:\n${output.slice(-3000)}`);
      }
      await sleep(250);
    }
    const doneAt = Date.now();
    probing = false;
    await prober;
    if (!job) throw new Error(`the service made no job within ${options.timeoutMs} ms:\n${output.slice(-3000)}`);
    const detail = await api<JobView>(`/jobs/${job.id}`);
    if (detail.state !== "done") throw new Error(`the service's job ended ${detail.state}: ${JSON.stringify(detail).slice(0, 1500)}`);

    const created = Date.parse(detail.createdAt);
    const stamps = Object.entries(stageStarted).sort((a, b) => a[1] - b[1]);
    const stageMs: Record<string, number> = {};
    stamps.forEach(([name, at], i) => {
      const end = stamps[i + 1]?.[1] ?? doneAt;
      if (name !== "done") stageMs[name] = end - at;
    });
    return {
      slices: uploaded.seriesIds.length ? detail.slicesTotal : 0,
      provider: detail.provider,
      state: detail.state,
      waitForStableMs: created - uploadDone,
      jobMs: Date.parse(detail.updatedAt) - created,
      uploadToDoneMs: doneAt - uploadDone,
      stageMs,
      health: {
        all: summarise(samples.map((s) => s.ms)),
        duringInfer: summarise(samples.filter((s) => s.stage === "infer").map((s) => s.ms)),
        slowest: [...samples].sort((a, b) => b.ms - a.ms).slice(0, 8).map((s) => ({
          stage: s.stage,
          secondsIntoStage: Math.round((s.at - (stageStarted[s.stage] ?? uploadDone)) / 100) / 10,
          ms: round(s.ms),
        })),
      },
      events: detail.events ?? [],
      config: {
        orthancStableAgeSeconds: options.orthancStableAgeSeconds,
        serviceStableAgeSeconds,
        cpuThreads: options.cpuThreads,
        provider: options.provider,
      },
    };
  } finally {
    if (child.exitCode === null) {
      await new Promise<void>((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 30_000).unref();
      });
    }
    rmSync(dataDir, { recursive: true, force: true });
  }
}
