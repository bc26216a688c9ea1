/**
 * `npm run bench:workers`: throughput of the distributed mode with 1 and then 3 workers (issue 15), in one run, on
 * this machine. A local Redis is started; for each round its own Orthanc, a follower (`ct-enhance serve` with a Redis
 * URL) and N worker processes (`ct-enhance worker`), then the same 20 series (copies of one real series' slices, new
 * UIDs per round) arrive at once. The round ends when every job has ended; it records the span from the upload's
 * start to the last job's end, the jobs per worker, and the mean seconds per job of each stage (fetch, probe, infer,
 * store: the follower's /metrics, which sums what the workers shipped). Written to
 * bench-results/<date>-<host>-workers.json|md. A measurement, not a timed test.
 *
 *   node dist/bench/workers-bench.js [--series FOLDER] [--copies N] [--slices N] [--workers 1,3] [--cpu-threads N]
 *     [--provider cpu|auto|cuda|webgpu] [--timeout-minutes M] [--out FOLDER]
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { PACKAGE_ROOT, Provider } from "../config.js";
import { freePort, type LocalOrthanc, startLocalOrthanc } from "../orthanc/local-orthanc.js";
import { flags } from "./command-line.js";
import { startLocalRedis, type LocalRedis } from "./local-redis.js";
import { table, writeResults } from "./report.js";
import { writeSeriesCopies } from "./series-copies.js";
import { contiguousSlices } from "./series-files.js";
import { localServiceEnvironment } from "./service-probe.js";
import { spawnServe } from "./bench-service.js";
import { startWorkerProcess, type WorkerProcess } from "./worker-processes.js";

const USAGE = "usage: node dist/bench/workers-bench.js [--series FOLDER] [--copies N] [--slices N] [--workers 1,3] " +
  "[--cpu-threads N] [--provider cpu|auto|cuda|webgpu] [--timeout-minutes M] [--out FOLDER]";

interface Options {
  series: string;
  copies: number;
  slices: number;
  workers: number[];
  cpuThreads: number;
  provider: string;
  timeoutMinutes: number;
  out: string;
}

interface JobView { id: number; sourceSeriesUid: string; state: string; worker: string | null; updatedAt: string }

/** One round: N workers, the same series. */
interface Round {
  workers: number;
  jobs: number;
  done: number;
  seconds: number;
  seriesPerMinute: number;
  byWorker: Record<string, number>;
  /** Mean seconds per job in each stage (fetch, probe, infer, store, ...). */
  stageMeanSeconds: Record<string, number>;
  /**
   * The machine's 1-minute load average at the round's start and end: on a machine shared with other work, a busier
   * round is slower for that reason alone.
   */
  loadAverage: [number, number];
}

const ENDED = ["done", "failed", "rejected", "skipped", "cancelled"];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function parseOptions(argv: string[]): Options {
  const options: Options = {
    series: path.resolve(PACKAGE_ROOT, "..", "shared", "data", "ct", "lidc-idri-0002-ncct"),
    copies: 20,
    slices: 20,
    workers: [1, 3],
    cpuThreads: 1,
    provider: "cpu",
    timeoutMinutes: 60,
    out: path.join(PACKAGE_ROOT, "bench-results"),
  };
  for (const { name, value, count } of flags(argv, USAGE)) {
    switch (name) {
      case "--series": options.series = path.resolve(value()); break;
      case "--copies": options.copies = count(1); break;
      case "--slices": options.slices = count(20); break; // the fixture pipeline selects series of 20+ instances
      case "--workers": options.workers = value().split(",").map((n) => Number(n)).filter((n) => Number.isInteger(n) && n > 0); break;
      case "--cpu-threads": options.cpuThreads = count(0); break;
      case "--provider": options.provider = Provider.parse(value()); break;
      case "--timeout-minutes": options.timeoutMinutes = count(1); break;
      case "--out": options.out = path.resolve(value()); break;
      case "--help": case "-h": process.stdout.write(`${USAGE}\n`); process.exit(0); break;
      default: throw new Error(`unknown option ${name}; ${USAGE}`);
    }
  }
  return options;
}

/** The follower: `ct-enhance serve` with the Redis URL, its own data folder and queue. */
async function startFollower(env: NodeJS.ProcessEnv, port: number, token: string) {
  const service = await spawnServe(env, port, token);
  return {
    jobs: () => service.api<JobView[]>("/jobs"),
    metrics: () => service.api<string>("/metrics"),
    stop: () => service.stop(),
  };
}

/** Mean seconds per job of each stage, from the follower's stage-duration histograms. */
function stageMeans(metrics: string): Record<string, number> {
  const sums = new Map<string, number>();
  const counts = new Map<string, number>();
  for (const match of metrics.matchAll(/^ct_enhance_stage_duration_seconds_(sum|count)\{stage="([^"]+)"\} ([0-9.eE+-]+)$/gm)) {
    (match[1] === "sum" ? sums : counts).set(match[2]!, Number(match[3]));
  }
  return Object.fromEntries([...sums].map(([stage, sum]) => [stage, Number((sum / Math.max(1, counts.get(stage) ?? 1)).toFixed(2))]));
}

/** One round on its own Orthanc (a follower with a new ledger would otherwise take the earlier rounds' series too). */
async function runRound(redis: LocalRedis, options: Options, workers: number, work: string, files: string[]): Promise<Round> {
  const orthanc = await startLocalOrthanc({ name: `workers-${workers}`, stableAgeSeconds: 2 });
  try {
    return await measureRound(orthanc, redis, options, workers, work, files);
  } finally {
    await orthanc.stop();
  }
}

async function measureRound(orthanc: LocalOrthanc, redis: LocalRedis, options: Options, workers: number, work: string, files: string[]): Promise<Round> {
  const dataDir = path.join(work, `follower-${workers}`);
  mkdirSync(dataDir, { recursive: true });
  const port = await freePort();
  const token = `bench-${Math.random().toString(36).slice(2)}`;
  const env = {
    ...localServiceEnvironment(orthanc, { dataDir, port, token, stableAgeSeconds: 3 }),
    CT_ENHANCE_REDIS_URL: redis.url,
    CT_ENHANCE_QUEUE_NAME: `bench-${workers}`,
    CT_ENHANCE_PROVIDER: options.provider,
    CT_ENHANCE_CPU_THREADS: String(options.cpuThreads),
    CT_ENHANCE_PIPELINES_FILE: path.join(PACKAGE_ROOT, "tests", "fixtures", "pipelines-syncta-only.json"),
    CT_ENHANCE_MODELS_DIR: path.join(PACKAGE_ROOT, "tests", "fixtures", "operator-models"),
    CT_ENHANCE_RECONCILE_CRON: "off",
    CT_ENHANCE_LOG_LEVEL: "warn",
  };
  const follower = await startFollower(env, port, token);
  const started: WorkerProcess[] = [];
  try {
    for (let i = 1; i <= workers; i += 1) started.push(await startWorkerProcess(`bench-${workers}-w${i}`, { ...env, CT_ENHANCE_LOG_LEVEL: "info" }));
    const copies = writeSeriesCopies(files, options.copies, path.join(work, `copies-${workers}`));
    process.stdout.write(`round with ${workers} worker(s): uploading ${copies.length} series of ${files.length} slices\n`);
    const t0 = Date.now();
    const loadAtStart = os.loadavg()[0]!;
    await Promise.all(copies.map((copy) => orthanc.upload(copy.files)));
    const sources = new Set(copies.map((c) => c.seriesInstanceUID));
    const deadline = Date.now() + options.timeoutMinutes * 60_000;
    let jobs: JobView[] = [];
    for (;;) {
      jobs = (await follower.jobs()).filter((j) => sources.has(j.sourceSeriesUid));
      if (jobs.length === sources.size && jobs.every((j) => ENDED.includes(j.state))) break;
      if (Date.now() > deadline) throw new Error(`round with ${workers} worker(s) did not end in ${options.timeoutMinutes} min`);
      await sleep(500);
    }
    const lastEnd = Math.max(...jobs.map((j) => Date.parse(j.updatedAt)));
    const seconds = (lastEnd - t0) / 1000;
    const byWorker: Record<string, number> = {};
    for (const job of jobs) byWorker[job.worker ?? "none"] = (byWorker[job.worker ?? "none"] ?? 0) + 1;
    const done = jobs.filter((j) => j.state === "done").length;
    return {
      workers, jobs: jobs.length, done, seconds: Number(seconds.toFixed(1)), seriesPerMinute: Number(((done / seconds) * 60).toFixed(2)),
      byWorker, stageMeanSeconds: stageMeans(await follower.metrics()),
      loadAverage: [Number(loadAtStart.toFixed(1)), Number(os.loadavg()[0]!.toFixed(1))],
    };
  } finally {
    await Promise.all(started.map((w) => w.stop()));
    await follower.stop();
  }
}

function markdown(result: { startedAt: string; host: string; cpus: number; loadAverage: number[]; options: object; rounds: Round[] }): string {
  const stages = [...new Set(result.rounds.flatMap((r) => Object.keys(r.stageMeanSeconds)))].sort();
  return [
    `# Workers bench, ${result.startedAt} on ${result.host} (${result.cpus} CPUs, load average at start ${result.loadAverage.map((n) => n.toFixed(1)).join(" ")})`,
    "",
    `Options: ${JSON.stringify(result.options)}`,
    "",
    table(["workers", "jobs done", "seconds (upload start to last end)", "series/min", "jobs per worker", ...stages.map((s) => `${s} s/job`),
      "load average (start, end)"],
    result.rounds.map((r) => [r.workers, `${r.done}/${r.jobs}`, r.seconds, r.seriesPerMinute, JSON.stringify(r.byWorker),
      ...stages.map((s) => r.stageMeanSeconds[s] ?? "-"), r.loadAverage.join(", ")])),
    "",
  ].join("\n");
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const startedAt = new Date();
  const loadAverage = os.loadavg();
  const work = mkdtempSync(path.join(os.tmpdir(), "ct-enhance-workers-bench-"));
  const redis = await startLocalRedis();
  try {
    const files = contiguousSlices(options.series, options.slices);
    const rounds: Round[] = [];
    for (const workers of options.workers) rounds.push(await runRound(redis, options, workers, work, files));
    const result = {
      startedAt: startedAt.toISOString(), host: os.hostname(), cpus: os.cpus().length, loadAverage,
      options: { series: path.basename(options.series), copies: options.copies, slices: options.slices, cpuThreads: options.cpuThreads, provider: options.provider },
      rounds,
    };
    const stem = `${startedAt.toISOString().slice(0, 16).replace(/[:T]/g, "-")}-${os.hostname()}-workers`;
    const written = writeResults(options.out, stem, result, markdown(result));
    process.stdout.write(`${markdown(result)}\nwrote ${written.markdown} and ${written.json}\n`);
    if (rounds.some((r) => r.done !== options.copies)) process.exitCode = 1;
  } finally {
    await redis.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
