/**
 * `npm run bench:large`: one very long series through the running service (issue 14, "disk and memory"). The real
 * slices of a series are stacked end to end into N instances (default 2000) with new UIDs, each at its own position
 * (src/bench/series-copies.ts), uploaded to a local Orthanc, and `ct-enhance serve` (its own process, the operator
 * tests' Syn-CTA fixture pipeline) processes it under a volume limit (CT_ENHANCE_MAX_VOLUME_MB) that admits it.
 * Every second the bench reads the service's resident set from /proc with the job's stage; at the end the kernel's
 * own peak (VmHWM), whether the process is still alive (not OOM-killed), the job's stages and the output in Orthanc
 * go to bench-results/<date>-<host>-large-n<N>.json|md. A measurement, not a timed test; it takes a while (2000
 * slices of 512x512 are ~1 GiB to upload, a 2000 MiB float32 volume, and 2000 slices through the model).
 *
 *   node dist/bench/large-series-bench.js [--slices N] [--series FOLDER] [--limit-mib M] [--provider cpu|auto|cuda|webgpu]
 *     [--cpu-threads N] [--timeout-minutes M] [--out FOLDER]
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { PACKAGE_ROOT, Provider } from "../config.js";
import { startLocalOrthanc } from "../orthanc/local-orthanc.js";
import { type BenchService, procStatusMiB, startBenchService } from "./bench-service.js";
import { flags } from "./command-line.js";
import { table, writeResults } from "./report.js";
import { writeStackedSeries } from "./series-copies.js";
import { seriesFiles, slicesInPositionOrder } from "./series-files.js";

const USAGE = "usage: node dist/bench/large-series-bench.js [--slices N] [--series FOLDER] [--limit-mib M] " +
  "[--provider cpu|auto|cuda|webgpu] [--cpu-threads N] [--timeout-minutes M] [--out FOLDER]";

interface Options {
  slices: number;
  series: string;
  limitMiB: number;
  provider: string;
  cpuThreads: number;
  timeoutMinutes: number;
  out: string;
}

function parseOptions(argv: string[]): Options {
  const options: Options = {
    slices: 2000,
    series: path.resolve(PACKAGE_ROOT, "..", "shared", "data", "ct", "lidc-idri-0002-ncct"),
    limitMiB: 2048,
    provider: "cpu",
    cpuThreads: 0,
    timeoutMinutes: 120,
    out: path.join(PACKAGE_ROOT, "bench-results"),
  };
  for (const { name, value, count } of flags(argv, USAGE)) {
    switch (name) {
      case "--slices": options.slices = count(20); break;
      case "--series": options.series = path.resolve(value()); break;
      case "--limit-mib": options.limitMiB = count(1); break;
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
  id: number; state: string; stage: string | null; attempts: number; outputSeriesUid: string | null;
  errorMessage: string | null; slicesDone?: number; slicesTotal?: number;
}
interface JobDetail extends JobView { events: { at: string; kind: string; message: string }[] }
interface Sample { atS: number; state: string; stage: string; rssMiB: number }

const ENDED = ["done", "failed", "rejected", "skipped", "cancelled"];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const startedAt = new Date();
  const work = mkdtempSync(path.join(os.tmpdir(), "ct-enhance-large-"));
  const orthanc = await startLocalOrthanc({ name: "large", stableAgeSeconds: 2 });
  let service: BenchService | undefined;
  try {
    const t0 = Date.now();
    const sources = slicesInPositionOrder(seriesFiles(options.series));
    const stack = writeStackedSeries(sources, options.slices, path.join(work, "stack"));
    const writeS = (Date.now() - t0) / 1000;
    process.stdout.write(`wrote ${options.slices} slices (${sources.length} real slices of ${path.basename(options.series)} stacked) in ${writeS.toFixed(1)} s\n`);

    service = await startBenchService(orthanc, {
      dataDir: path.join(work, "data"), provider: options.provider, cpuThreads: options.cpuThreads,
      env: { CT_ENHANCE_MAX_VOLUME_MB: String(options.limitMiB), CT_ENHANCE_LOG_LEVEL: "info" },
    });
    const { api, child } = service;
    const samples: Sample[] = [];
    let job: JobView | undefined;
    let sampling = true;
    const t1 = Date.now();
    const sampler = (async () => {
      while (sampling) {
        const tick = Date.now();
        job = (await api<JobView[]>("/jobs").catch(() => [job]))[0] ?? job;
        samples.push({ atS: (tick - t1) / 1000, state: job?.state ?? "-", stage: job?.stage ?? "-", rssMiB: procStatusMiB(child.pid, "VmRSS") });
        await sleep(Math.max(0, 1000 - (Date.now() - tick)));
      }
    })();

    const upload = await orthanc.upload(stack.files);
    const uploadS = (Date.now() - t1) / 1000;
    process.stdout.write(`uploaded ${stack.files.length} instances (${(upload.bytes / 2 ** 20).toFixed(0)} MiB) in ${uploadS.toFixed(1)} s; waiting for the job\n`);
    const deadline = Date.now() + options.timeoutMinutes * 60_000;
    while (!(job && ENDED.includes(job.state)) && Date.now() < deadline && child.exitCode === null && child.signalCode === null) await sleep(1000);
    sampling = false;
    await sampler;

    const alive = child.exitCode === null && child.signalCode === null;
    const peakMiB = procStatusMiB(child.pid, "VmHWM");
    const detail = alive && job ? await api<JobDetail>(`/jobs/${job.id}`) : undefined;
    let outputInstances = 0;
    if (detail?.outputSeriesUid) {
      const found = await orthanc.rest<{ ID: string; Type: string }[]>("/tools/lookup", { method: "POST", body: detail.outputSeriesUid });
      const id = found.find((f) => f.Type === "Series")?.ID;
      outputInstances = id ? (await orthanc.rest<{ Instances: string[] }>(`/series/${id}`)).Instances.length : 0;
    }
    const peakByStage: Record<string, number> = {};
    for (const s of samples) if (Number.isFinite(s.rssMiB)) peakByStage[s.stage] = Math.max(peakByStage[s.stage] ?? 0, s.rssMiB);
    const volumeMiB = Math.round((options.slices * 512 * 512 * 4) / 2 ** 20);
    const result = {
      startedAt: startedAt.toISOString(), host: os.hostname(), cpus: os.cpus().length, memoryMiB: Math.round(os.totalmem() / 2 ** 20),
      options: { ...options, series: path.basename(options.series), out: undefined },
      stack: { slices: options.slices, realSlices: sources.length, writeSeconds: writeS, uploadSeconds: uploadS, uploadMiB: Math.round(upload.bytes / 2 ** 20) },
      volumeMiBIf512: volumeMiB,
      serviceAlive: alive, exit: alive ? null : { code: child.exitCode, signal: child.signalCode },
      job: detail ? { state: detail.state, attempts: detail.attempts, error: detail.errorMessage, events: detail.events.map((e) => `${e.at} ${e.kind}: ${e.message}`) } : job,
      outputInstances,
      uploadToEndSeconds: samples.length > 0 ? samples.at(-1)!.atS - uploadS : null,
      rss: { peakMiBKernel: peakMiB, peakMiBSampled: Math.max(0, ...samples.map((s) => s.rssMiB).filter(Number.isFinite)), peakByStage },
      samples,
    };
    const markdown = [
      `# One ${options.slices}-slice series through the service (${result.startedAt}, ${result.host}, ${result.cpus} CPUs, ${result.memoryMiB} MiB)`,
      "",
      `${sources.length} real slices of ${path.basename(options.series)} stacked end to end into ${options.slices} instances with new UIDs; ` +
        `\`ct-enhance serve\` (provider ${options.provider}, the operator tests' Syn-CTA fixture pipeline) under CT_ENHANCE_MAX_VOLUME_MB=${options.limitMiB}. ` +
        "`npm run bench:large`.",
      "",
      table(["what", "measured"], [
        ["stack written / uploaded", `${writeS.toFixed(0)} s / ${uploadS.toFixed(0)} s (${result.stack.uploadMiB} MiB)`],
        ["job", detail ? `${detail.state} after ${detail.attempts} attempt(s)${detail.errorMessage ? `: ${detail.errorMessage}` : ""}` : `none (${job?.state ?? "no job"})`],
        ["output instances in Orthanc", outputInstances],
        ["upload finished -> job ended", `${result.uploadToEndSeconds?.toFixed(0) ?? "-"} s`],
        ["service alive at the end (not OOM-killed)", alive ? "yes" : `no (${JSON.stringify(result.exit)})`],
        ["service peak RSS (kernel VmHWM)", `${peakMiB} MiB (float32 volume ${volumeMiB} MiB)`],
        ["peak RSS sampled, by stage", Object.entries(peakByStage).map(([stage, mib]) => `${stage} ${mib}`).join(", ")],
      ]),
      "",
      "Job timeline:",
      "",
      ...(detail?.events ?? []).map((e) => `- ${e.at} ${e.kind}: ${e.message.slice(0, 300)}`),
    ].join("\n");
    const stem = `${startedAt.toISOString().slice(0, 16).replace(/[:T]/g, "-")}-${os.hostname()}-large-n${options.slices}`;
    const written = writeResults(options.out, stem, result, markdown);
    process.stdout.write(`${markdown}\nwrote ${written.markdown} and ${written.json}\n`);
    if (!alive || detail?.state !== "done") {
      process.stdout.write(`service log tail:\n${service.log().slice(-4000)}\n`);
      process.exitCode = 1;
    }
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
