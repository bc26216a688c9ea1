/**
 * `npm run bench:reuse`: what "one fetch, several models" saves (issue 15). A local Orthanc and `ct-enhance serve`; two
 * copies of a real series (new UIDs) are uploaded: the first is selected by two pipelines, the second by one, all
 * three on the reference Syn-CTA network under open safeguards (tests/fixtures/operator-models). From the three job
 * timelines it reads each job's fetch + volume time (its 'stage fetch' event to its 'volume' event), whether the
 * volume was fetched, reused (the second pipeline's job) or fetched ahead while the job before ran (the second
 * series), how long that prefetch took and whether it ended before that model did, and writes them to
 * bench-results/<date>-<host>-reuse.json|md. A measurement, not a timed test.
 *
 *   node dist/bench/reuse-bench.js [--series FOLDER] [--slices N] [--provider cpu|auto|cuda|webgpu] [--cpu-threads N] [--out FOLDER]
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { PACKAGE_ROOT, Provider } from "../config.js";
import { startLocalOrthanc } from "../orthanc/local-orthanc.js";
import { flags } from "./command-line.js";
import { table, writeResults } from "./report.js";
import { writeSeriesCopies } from "./series-copies.js";
import { contiguousSlices } from "./series-files.js";
import { type BenchService, startBenchService } from "./bench-service.js";

const USAGE = "usage: node dist/bench/reuse-bench.js [--series FOLDER] [--slices N] [--provider cpu|auto|cuda|webgpu] " +
  "[--cpu-threads N] [--out FOLDER]";

interface JobDetail {
  id: number;
  pipeline: string;
  state: string;
  sourceSeriesUid: string;
  events: { at: string; kind: string; message: string }[];
}

interface JobFigures {
  job: number;
  series: "first" | "second";
  pipeline: string;
  state: string;
  volume: "fetched" | "reused" | "prefetched";
  /** From the job's 'stage fetch' to its 'volume' event: what the fetch stage cost this job. */
  fetchAndVolumeS: number;
  inferS: number | null;
  jobS: number;
}

const ENDED = ["done", "failed", "rejected", "skipped", "cancelled"];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seconds = (from: string, to: string) => Math.round((Date.parse(to) - Date.parse(from)) / 10) / 100;

function figuresOf(job: JobDetail, series: JobFigures["series"]): JobFigures {
  const at = (kind: string, message?: string) => job.events.find((e) => e.kind === kind && (message === undefined || e.message === message))?.at;
  const fetchAt = at("stage", "fetch");
  const volumeAt = at("volume");
  const started = at("started");
  const ended = job.events.at(-1)?.at;
  if (!fetchAt || !volumeAt || !started || !ended) throw new Error(`job ${job.id} has no fetch/volume timeline: ${job.events.map((e) => e.kind).join(", ")}`);
  const inferFrom = at("stage", "infer");
  const inferTo = at("inferred");
  return {
    job: job.id, series, pipeline: job.pipeline, state: job.state,
    volume: at("volume-reused") ? "reused" : at("volume-prefetched") ? "prefetched" : "fetched",
    fetchAndVolumeS: seconds(fetchAt, volumeAt),
    inferS: inferFrom && inferTo ? seconds(inferFrom, inferTo) : null,
    jobS: seconds(started, ended),
  };
}

async function main(): Promise<void> {
  const options = { series: path.resolve(PACKAGE_ROOT, "..", "shared", "data", "ct", "lidc-idri-0002-ncct"), slices: 60,
    provider: "cpu", cpuThreads: 0, out: path.join(PACKAGE_ROOT, "bench-results") };
  for (const { name, value, count } of flags(process.argv.slice(2), USAGE)) {
    switch (name) {
      case "--series": options.series = path.resolve(value()); break;
      case "--slices": options.slices = count(10); break;
      case "--provider": options.provider = Provider.parse(value()); break;
      case "--cpu-threads": options.cpuThreads = count(0); break;
      case "--out": options.out = path.resolve(value()); break;
      case "--help": case "-h": process.stdout.write(`${USAGE}\n`); process.exit(0); break;
      default: throw new Error(`unknown option ${name}; ${USAGE}`);
    }
  }
  const startedAt = new Date();
  const work = mkdtempSync(path.join(os.tmpdir(), "ct-enhance-reuse-"));
  const orthanc = await startLocalOrthanc({ name: "reuse", stableAgeSeconds: 2 });
  let service: BenchService | undefined;
  try {
    const files = contiguousSlices(options.series, options.slices);
    const [first, second] = writeSeriesCopies(files, 2, path.join(work, "copies")) as [{ seriesInstanceUID: string; files: string[] }, { seriesInstanceUID: string; files: string[] }];
    const pipeline = (id: string, select: unknown[]) => ({ id, model: "syncta-any-ct", outputLabel: `Syn-CTA ${id}`, select });
    const pipelinesFile = path.join(work, "pipelines.json");
    writeFileSync(pipelinesFile, JSON.stringify({ pipelines: [
      pipeline("every-ct", [{ tag: "Modality", equals: "CT" }]),
      pipeline("first-series-again", [{ tag: "SeriesInstanceUID", equals: first.seriesInstanceUID }]),
    ] }));
    service = await startBenchService(orthanc, { dataDir: path.join(work, "data"), provider: options.provider, cpuThreads: options.cpuThreads,
      env: { CT_ENHANCE_PIPELINES_FILE: pipelinesFile } });
    const { api } = service;
    const jobsOf = async (uid: string) => (await api<JobDetail[]>("/jobs")).filter((j) => j.sourceSeriesUid === uid);
    const until = async (what: string, ok: () => Promise<boolean>) => {
      const deadline = Date.now() + 60 * 60_000;
      while (!(await ok())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(500);
      }
    };
    process.stdout.write(`uploading two copies of ${files.length} slices of ${path.basename(options.series)}\n`);
    await orthanc.upload(first.files);
    await until("the first series' two jobs", async () => (await jobsOf(first.seriesInstanceUID)).length === 2);
    await orthanc.upload(second.files);
    await until("every job to end", async () => {
      const all = await api<JobDetail[]>("/jobs");
      return all.length === 3 && all.every((j) => ENDED.includes(j.state));
    });
    const details = await Promise.all((await api<JobDetail[]>("/jobs")).map((j) => api<JobDetail>(`/jobs/${j.id}`)));
    const figures = details.sort((a, b) => a.id - b.id)
      .map((job) => figuresOf(job, job.sourceSeriesUid === first.seriesInstanceUID ? "first" : "second"));
    const prefetched = details.find((j) => j.events.some((e) => e.kind === "prefetched"));
    const prefetch = prefetched?.events.find((e) => e.kind === "prefetched")?.message ?? "no prefetch";
    const byJob = (kind: JobFigures["volume"]) => figures.find((f) => f.volume === kind);
    const before = details.find((j) => j.id === (prefetched ? Number(/while job (\d+)/.exec(prefetch)?.[1]) : -1));
    const prefetchEnd = prefetched?.events.find((e) => e.kind === "prefetched")?.at;
    const modelEnd = before?.events.find((e) => e.kind === "inferred")?.at;
    const result = {
      startedAt: startedAt.toISOString(), host: os.hostname(), cpus: os.cpus().length, slices: files.length,
      provider: options.provider, jobs: figures,
      retrievals: figures.filter((f) => f.volume !== "reused").length,
      prefetch, prefetchEndedBeforeTheModel: prefetchEnd && modelEnd ? Date.parse(prefetchEnd) <= Date.parse(modelEnd) : null,
      savedPerReusedJobS: byJob("fetched") && byJob("reused") ? Math.round((byJob("fetched")!.fetchAndVolumeS - byJob("reused")!.fetchAndVolumeS) * 100) / 100 : null,
    };
    const markdown = [
      `# One fetch, several models: ${files.length} slices of ${path.basename(options.series)}, ${options.provider}`, "",
      `${startedAt.toISOString()} on ${os.hostname()} (${os.cpus().length} CPUs). Three jobs, ${result.retrievals} WADO-RS retrievals.`, "",
      table(["job", "series", "pipeline", "state", "volume", "fetch + volume (s)", "model (s)", "job (s)"],
        figures.map((f) => [f.job, f.series, f.pipeline, f.state, f.volume, f.fetchAndVolumeS, f.inferS ?? "-", f.jobS])), "",
      `Prefetch: ${prefetch}; ended before the model of the job it ran beside: ${result.prefetchEndedBeforeTheModel}.`,
      `Fetch stage saved by the reused volume: ${result.savedPerReusedJobS} s.`,
    ].join("\n");
    const stem = `${startedAt.toISOString().slice(0, 16).replace(/[:T]/g, "-")}-${os.hostname()}-reuse`;
    const written = writeResults(options.out, stem, result, markdown);
    process.stdout.write(`${markdown}\nwrote ${written.markdown} and ${written.json}\n`);
  } finally {
    await service?.stop();
    await orthanc.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
