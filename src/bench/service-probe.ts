/**
 * The service as it runs (`node dist/cli.js serve`, its own process) on a fresh Orthanc: the series is uploaded, the
 * service finds it by itself, waits for it to be stable and runs every reference model on it (the shipped pipelines,
 * each made to select the bench series), while this process asks GET /health every 50 ms and notes how long each
 * answer took and in which stage of the running job it fell. Shows whether the event loop stays free while the
 * worker infers, and how long each model's job takes from start to done.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PACKAGE_ROOT } from "../config.js";
import { freePort, type LocalOrthanc } from "../orthanc/local-orthanc.js";

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
  /** Answers slower than 100 ms (the target), or errors. */
  over100Ms: number;
}

export interface ServiceJobResult {
  id: number;
  pipeline: string;
  model: string;
  provider: string | null;
  slices: number;
  /** How the job ended: done (stored), rejected by its output checks (nothing stored), or skipped (outside intended use). */
  ending: string;
  /** Job started -> its end (done, rejected or skipped), from the service's own job events. */
  jobMs: number;
  stageMs: Record<string, number>;
  events: { at: string; kind: string; message: string }[];
}

export interface ServiceProbeResult {
  /** Upload finished -> first job created (Orthanc StableAge and the service's stable age). */
  waitForStableMs: number;
  /** Upload finished -> the last job done. */
  uploadToDoneMs: number;
  /**
   * Issue 5's "stable to stored": the first job's queued event (the service saw the series stable and chose it) to
   * its end: done (its last instance stored), or rejected or skipped (nothing stored: the time to the decision).
   * The feed's poll interval (CT_ENHANCE_POLL_INTERVAL_MS) comes on top.
   */
  stableToEnd: { ms: number; ending: string };
  pollIntervalMs: number;
  jobs: ServiceJobResult[];
  /** Stages are named pipeline/stage ("ncct-syncta/infer"), of the job running when the request was sent. */
  health: {
    all: LatencySummary;
    duringInfer: LatencySummary;
    slowest: { stage: string; secondsIntoStage: number; ms: number }[];
    /** The service's own worst event-loop delay (per-second windows it reports in /health), ms. */
    serviceLoopDelayMaxMs: { all: number; duringInfer: number };
  };
  config: { orthancStableAgeSeconds: number; serviceStableAgeSeconds: number; cpuThreads: number; provider: string };
}

interface JobView {
  id: number;
  pipeline: string;
  modelId: string;
  state: string;
  stage: string | null;
  provider: string | null;
  slicesTotal: number;
  createdAt: string;
  updatedAt: string;
  events?: { at: string; kind: string; message: string }[];
}

/** The change feed's poll interval of a service started by localServiceEnvironment, ms. */
export const LOCAL_SERVICE_POLL_INTERVAL_MS = 250;

/**
 * The environment of a `ct-enhance serve` beside a local Orthanc, as the bench and the integration tests start it:
 * its credentials, a data folder, an API port and token, a quick feed (250 ms) and stable age.
 */
export function localServiceEnvironment(
  orthanc: Pick<LocalOrthanc, "url" | "username" | "password">,
  settings: { dataDir: string; port: number; token: string; stableAgeSeconds: number },
): NodeJS.ProcessEnv {
  return {
    ...process.env,
    CT_ENHANCE_ORTHANC_URL: orthanc.url,
    CT_ENHANCE_ORTHANC_USERNAME: orthanc.username,
    CT_ENHANCE_ORTHANC_PASSWORD: orthanc.password,
    CT_ENHANCE_DATA_DIR: settings.dataDir,
    CT_ENHANCE_PORT: String(settings.port),
    CT_ENHANCE_API_TOKEN: settings.token,
    CT_ENHANCE_POLL_INTERVAL_MS: String(LOCAL_SERVICE_POLL_INTERVAL_MS),
    CT_ENHANCE_STABLE_AGE_SECONDS: String(settings.stableAgeSeconds),
  };
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
    ...localServiceEnvironment(orthanc, { dataDir, port, token, stableAgeSeconds: serviceStableAgeSeconds }),
    CT_ENHANCE_PROVIDER: options.provider,
    CT_ENHANCE_CPU_THREADS: String(options.cpuThreads),
    CT_ENHANCE_PIPELINES_FILE: writeBenchPipelines(dataDir),
  };
  const expectedJobs = pipelineCount(env.CT_ENHANCE_PIPELINES_FILE);
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
    const samples: { stage: string; ms: number; at: number; loopDelayMs?: number }[] = [];
    let probing = true;
    const prober = (async () => {
      while (probing) {
        const tick = performance.now();
        const during = stage;
        const sentAt = Date.now();
        try {
          const response = await fetch(`${apiUrl}/health`, { signal: AbortSignal.timeout(5000) });
          const body = (await response.json()) as { eventLoop?: { delayMaxMsLastSecond: number } };
          const loopDelayMs = body.eventLoop?.delayMaxMsLastSecond;
          samples.push({ stage: during, ms: performance.now() - tick, at: sentAt, ...(loopDelayMs !== undefined ? { loopDelayMs } : {}) });
        } catch {
          samples.push({ stage: during, ms: 5000, at: sentAt });
        }
        await sleep(Math.max(0, 50 - (performance.now() - tick)));
      }
    })();

    await orthanc.upload(files);
    const uploadDone = Date.now();
    stage = "wait-for-stable";
    let jobs: JobView[] = [];
    const stageStarted: Record<string, number> = {};
    while (Date.now() - uploadDone < options.timeoutMs) {
      const listed = await api<JobView[] | { jobs: JobView[] }>("/jobs");
      jobs = Array.isArray(listed) ? listed : listed.jobs;
      const running = jobs.find((j) => j.state === "running");
      const now = running ? `${running.pipeline}/${running.stage ?? "start"}` : jobs.length ? "between jobs" : "wait-for-stable";
      if (now !== stage) {
        stage = now;
        stageStarted[now] = Date.now();
      }
      const finished = jobs.filter((j) => ENDINGS.includes(j.state) || j.state === "failed").length;
      if (jobs.length >= expectedJobs && finished === jobs.length) break;
      if (!jobs.length && Date.now() - uploadDone > 90_000 + options.orthancStableAgeSeconds * 1000) {
        throw new Error(`the service made no job within 90 s of the series becoming stable; see GET /decisions:\n${output.slice(-3000)}`);
      }
      await sleep(250);
    }
    const doneAt = Date.now();
    probing = false;
    await prober;
    if (jobs.length < expectedJobs) throw new Error(`the service made ${jobs.length} of ${expectedJobs} jobs within ${options.timeoutMs} ms:\n${output.slice(-3000)}`);

    const results: ServiceJobResult[] = [];
    for (const listed of jobs) {
      const detail = await api<JobView>(`/jobs/${listed.id}`);
      if (!ENDINGS.includes(detail.state)) throw new Error(`the service's job ended ${detail.state}: ${JSON.stringify(detail).slice(0, 1500)}`);
      results.push(jobTimes(detail));
    }
    return {
      waitForStableMs: Math.min(...jobs.map((j) => Date.parse(j.createdAt))) - uploadDone,
      uploadToDoneMs: doneAt - uploadDone,
      stableToEnd: firstJobQueuedToEnd(results),
      pollIntervalMs: LOCAL_SERVICE_POLL_INTERVAL_MS,
      jobs: results,
      health: {
        serviceLoopDelayMaxMs: {
          all: Math.max(0, ...samples.map((s) => s.loopDelayMs ?? 0)),
          duringInfer: Math.max(0, ...samples.filter((s) => s.stage.endsWith("/infer")).map((s) => s.loopDelayMs ?? 0)),
        },
        all: summarise(samples.map((s) => s.ms)),
        duringInfer: summarise(samples.filter((s) => s.stage.endsWith("/infer")).map((s) => s.ms)),
        slowest: [...samples].sort((a, b) => b.ms - a.ms).slice(0, 8).map((s) => ({
          stage: s.stage,
          secondsIntoStage: Math.round((s.at - (stageStarted[s.stage] ?? uploadDone)) / 100) / 10,
          ms: round(s.ms),
        })),
      },
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

/** The shipped pipelines, each selecting what the first one selects (the NCCT rule), so every model runs here. */
function writeBenchPipelines(dataDir: string): string {
  const shipped = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, "models", "pipelines.json"), "utf8")) as {
    pipelines: { select: unknown }[];
  };
  const select = shipped.pipelines[0]!.select;
  const file = path.join(dataDir, "bench-pipelines.json");
  writeFileSync(file, `${JSON.stringify({ pipelines: shipped.pipelines.map((p) => ({ ...p, select })) }, null, 2)}\n`);
  return file;
}

function pipelineCount(file: string): number {
  return (JSON.parse(readFileSync(file, "utf8")) as { pipelines: unknown[] }).pipelines.length;
}

/**
 * The earliest-queued job's queued -> its end (done: its last instance stored; rejected or skipped: the decision),
 * from its events (NaN when it has no such events).
 */
function firstJobQueuedToEnd(jobs: ServiceJobResult[]): { ms: number; ending: string } {
  const at = (job: ServiceJobResult, kinds: string[]) => Date.parse(job.events.find((e) => kinds.includes(e.kind))?.at ?? "");
  const first = [...jobs].sort((a, b) => at(a, ["queued"]) - at(b, ["queued"]))[0];
  return first ? { ms: at(first, ENDINGS) - at(first, ["queued"]), ending: first.ending } : { ms: Number.NaN, ending: "none" };
}

/** The states a job the node handled as it should ends in: stored, rejected by its checks, outside intended use. */
const ENDINGS = ["done", "rejected", "skipped"];

/** A finished job's times from its own events: started -> its end, and each stage until the next. */
function jobTimes(job: JobView): ServiceJobResult {
  const events = job.events ?? [];
  const at = (e: { at: string }) => Date.parse(e.at);
  const started = events.filter((e) => e.kind === "started").at(-1);
  const done = events.find((e) => ENDINGS.includes(e.kind));
  const stageMs: Record<string, number> = {};
  const marks = events.filter((e) => e.kind === "stage" || ENDINGS.includes(e.kind));
  marks.forEach((e, i) => {
    const next = marks[i + 1];
    if (e.kind === "stage" && next) stageMs[e.message] = (stageMs[e.message] ?? 0) + at(next) - at(e);
  });
  return {
    id: job.id,
    pipeline: job.pipeline,
    model: job.modelId,
    provider: job.provider,
    slices: job.slicesTotal,
    ending: job.state,
    jobMs: started && done ? at(done) - at(started) : Number.NaN,
    stageMs,
    events,
  };
}
