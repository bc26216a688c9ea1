/**
 * `npm run bench:load`: many series arriving at once (issue 14, "load"). A local Orthanc and `ct-enhance serve` (its
 * own process) are started; N copies of a small real series, each with new UIDs, are uploaded spread over a window
 * (default 50 within 60 s); the bench waits until every copy's job has ended, sampling the service's queue depth and
 * RSS every 500 ms, then checks that each copy was processed exactly once (one job, one derived series in Orthanc
 * with as many instances as its source) and writes throughput and upload-to-done latency percentiles to
 * bench-results/<date>-<host>-load-n<N>.json|md. A measurement, not a timed test.
 *
 *   node dist/bench/load-bench.js [--copies N] [--window-seconds S] [--series FOLDER] [--slices N]
 *     [--provider cpu|auto|cuda|webgpu] [--cpu-threads N] [--timeout-minutes M] [--out FOLDER]
 *
 * The pipeline is the operator tests' fixture (tests/fixtures/pipelines-syncta-only.json): the reference Syn-CTA
 * network under safeguards that let any CT through, so every copy ends done and its output can be counted.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { PACKAGE_ROOT, Provider } from "../config.js";
import { type LocalOrthanc, startLocalOrthanc } from "../orthanc/local-orthanc.js";
import { flags } from "./command-line.js";
import { loadMarkdown, type LoadResult, type LoadSample, percentiles } from "./load-report.js";
import { writeResults } from "./report.js";
import { writeSeriesCopies } from "./series-copies.js";
import { contiguousSlices } from "./series-files.js";
import { rssMiB, startService } from "./service-process.js";

const USAGE = "usage: node dist/bench/load-bench.js [--copies N] [--window-seconds S] [--series FOLDER] [--slices N] " +
  "[--provider cpu|auto|cuda|webgpu] [--cpu-threads N] [--timeout-minutes M] [--out FOLDER]";

interface Options {
  copies: number;
  windowSeconds: number;
  series: string;
  slices: number;
  provider: string;
  cpuThreads: number;
  timeoutMinutes: number;
  out: string;
}

function parseOptions(argv: string[]): Options {
  const options: Options = {
    copies: 50,
    windowSeconds: 60,
    series: path.resolve(PACKAGE_ROOT, "..", "shared", "data", "ct", "lidc-idri-0002-ncct"),
    slices: 20,
    provider: "cpu",
    cpuThreads: 0,
    timeoutMinutes: 60,
    out: path.join(PACKAGE_ROOT, "bench-results"),
  };
  for (const { name, value, count } of flags(argv, USAGE)) {
    switch (name) {
      case "--copies": options.copies = count(1); break;
      case "--window-seconds": options.windowSeconds = count(0); break;
      case "--series": options.series = path.resolve(value()); break;
      case "--slices": options.slices = count(20); break; // the fixture pipeline selects series of 20+ instances
      case "--provider": options.provider = Provider.parse(value()); break;
      case "--cpu-threads": options.cpuThreads = count(0); break;
      case "--timeout-minutes": options.timeoutMinutes = count(1); break;
      case "--out": options.out = path.resolve(value()); break;
      case "--help": case "-h": process.stdout.write(`${USAGE}\n`); process.exit(0); break;
      default: throw new Error(`unknown option ${name}; ${USAGE}`);
    }
  }
  return options;
}

interface JobView {
  id: number;
  sourceSeriesUid: string;
  state: string;
  outputSeriesUid: string | null;
  updatedAt: string;
  errorMessage: string | null;
}

const ENDED = ["done", "failed", "rejected", "skipped", "cancelled"];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const startedAt = new Date();
  const work = mkdtempSync(path.join(os.tmpdir(), "ct-enhance-load-"));
  const orthanc = await startLocalOrthanc({ name: "load", stableAgeSeconds: 2 });
  let service: Awaited<ReturnType<typeof startService>> | undefined;
  try {
    const files = contiguousSlices(options.series, options.slices);
    process.stdout.write(`writing ${options.copies} copies of ${files.length} slices of ${path.basename(options.series)} with new UIDs\n`);
    const copies = writeSeriesCopies(files, options.copies, path.join(work, "copies"));
    service = await startService(orthanc, options, path.join(work, "data"), {
      CT_ENHANCE_PIPELINES_FILE: path.join(PACKAGE_ROOT, "tests", "fixtures", "pipelines-syncta-only.json"),
    });
    const { api, child } = service;

    const samples: LoadSample[] = [];
    let jobs: JobView[] = [];
    let sampling = true;
    const t0 = Date.now();
    const sampler = (async () => {
      while (sampling) {
        const tick = Date.now();
        jobs = await api<JobView[]>("/jobs").catch(() => jobs);
        const count = (state: string) => jobs.filter((j) => j.state === state).length;
        samples.push({ atS: (tick - t0) / 1000, queued: count("queued") + count("retry-wait"), running: count("running"),
          ended: jobs.filter((j) => ENDED.includes(j.state)).length, rssMiB: rssMiB(child.pid) });
        await sleep(Math.max(0, 500 - (Date.now() - tick)));
      }
    })();

    const uploaded = new Map<string, { startS: number; doneAt: number }>();
    for (const [i, copy] of copies.entries()) {
      const due = t0 + (options.windowSeconds * 1000 * i) / options.copies;
      if (due > Date.now()) await sleep(due - Date.now());
      const startS = (Date.now() - t0) / 1000;
      await orthanc.upload(copy.files);
      uploaded.set(copy.seriesInstanceUID, { startS, doneAt: Date.now() });
    }
    const uploadsS = (Date.now() - t0) / 1000;
    process.stdout.write(`uploaded ${copies.length} series in ${uploadsS.toFixed(1)} s; waiting for their jobs\n`);

    const deadline = Date.now() + options.timeoutMinutes * 60_000;
    const sources = new Set(uploaded.keys());
    const endedFor = () => new Set(jobs.filter((j) => sources.has(j.sourceSeriesUid) && ENDED.includes(j.state)).map((j) => j.sourceSeriesUid));
    while (endedFor().size < sources.size && Date.now() < deadline) await sleep(1000);
    await sleep(2000); // a duplicate job, were one made, would show by now
    sampling = false;
    await sampler;
    jobs = await api<JobView[]>("/jobs");

    const result = await summarise(orthanc, options, copies.length, uploaded, jobs, samples, uploadsS, startedAt);
    const stem = `${startedAt.toISOString().slice(0, 16).replace(/[:T]/g, "-")}-${os.hostname()}-load-n${options.copies}`;
    const written = writeResults(options.out, stem, result, loadMarkdown(result));
    process.stdout.write(`${loadMarkdown(result)}\nwrote ${written.markdown} and ${written.json}\n`);
    if (!result.exactlyOnce.ok) process.exitCode = 1;
  } finally {
    await service?.stop();
    await orthanc.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

async function summarise(
  orthanc: LocalOrthanc, options: Options, copies: number, uploaded: Map<string, { startS: number; doneAt: number }>,
  jobs: JobView[], samples: LoadSample[], uploadsS: number, startedAt: Date,
): Promise<LoadResult> {
  const bySource = new Map<string, JobView[]>();
  for (const job of jobs) bySource.set(job.sourceSeriesUid, [...(bySource.get(job.sourceSeriesUid) ?? []), job]);
  const done = jobs.filter((j) => j.state === "done");
  const problems: string[] = [];
  for (const uid of uploaded.keys()) {
    const its = bySource.get(uid) ?? [];
    if (its.length !== 1) problems.push(`source ${uid}: ${its.length} jobs`);
  }
  for (const uid of bySource.keys()) if (!uploaded.has(uid)) problems.push(`a job for ${uid}, which the bench did not upload (our own output?)`);
  const outputs = new Set<string>();
  for (const job of done) {
    if (!job.outputSeriesUid || outputs.has(job.outputSeriesUid)) { problems.push(`job ${job.id}: output ${job.outputSeriesUid} missing or shared`); continue; }
    outputs.add(job.outputSeriesUid);
    const found = await orthanc.rest<{ ID: string; Type: string }[]>("/tools/lookup", { method: "POST", body: job.outputSeriesUid });
    const id = found.find((f) => f.Type === "Series")?.ID;
    const instances = id ? (await orthanc.rest<{ Instances: string[] }>(`/series/${id}`)).Instances.length : 0;
    if (instances !== options.slices) problems.push(`job ${job.id}: output series has ${instances} instances, source ${options.slices}`);
  }
  const allSeries = (await orthanc.rest<string[]>("/series")).length;
  if (allSeries !== copies + done.length) problems.push(`Orthanc holds ${allSeries} series: ${copies} sources + ${done.length} outputs expected`);

  const latencies = done.flatMap((j) => {
    const up = uploaded.get(j.sourceSeriesUid);
    return up ? [(Date.parse(j.updatedAt) - up.doneAt) / 1000] : [];
  });
  const firstUpload = Math.min(...[...uploaded.values()].map((u) => u.doneAt));
  const lastDone = Math.max(...done.map((j) => Date.parse(j.updatedAt)));
  const spanMin = (lastDone - firstUpload) / 60_000;
  const failed = jobs.filter((j) => j.state !== "done");
  return {
    startedAt: startedAt.toISOString(),
    host: os.hostname(),
    cpus: os.cpus().length,
    options: { copies: options.copies, windowSeconds: options.windowSeconds, series: path.basename(options.series), slices: options.slices,
      provider: options.provider, cpuThreads: options.cpuThreads },
    uploadsSeconds: uploadsS,
    jobs: { total: jobs.length, done: done.length, notDone: failed.map((j) => ({ id: j.id, state: j.state, error: j.errorMessage })),
      duplicated: [...bySource.values()].filter((list) => list.length > 1).length },
    exactlyOnce: { ok: problems.length === 0 && done.length === copies, problems, outputSeries: outputs.size, orthancSeries: allSeries },
    throughputSeriesPerMin: done.length > 0 && spanMin > 0 ? done.length / spanMin : 0,
    latencySeconds: percentiles(latencies),
    queueDepthMax: Math.max(0, ...samples.map((s) => s.queued)),
    rssMiBMax: Math.max(0, ...samples.map((s) => s.rssMiB).filter(Number.isFinite)),
    samples,
  };
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
