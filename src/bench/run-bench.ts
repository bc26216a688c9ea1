/**
 * `npm run bench`: one CT series through the pipeline's stages, timed stage by stage, with the raw DICOMweb baselines
 * measured in the same run (rounds alternate pipeline/baseline and baseline/pipeline, and the streamed and serial
 * modes; medians and ratios reported), the pipeline's peak RSS (its own process), CPU ms per slice for threads x
 * batch size, and the service itself (`ct-enhance serve`) running every reference model on the series while
 * /health is asked every 50 ms. Writes bench-results/<date>-<host>.json and .md.
 *
 *   node dist/bench/run-bench.js [--series FOLDER] [--slices N] [--model ID] [--provider auto|cpu|cuda|webgpu]
 *     [--cpu-threads N] [--rounds N] [--mode streamed|unguarded|serial|both|guards|all] [--sweep-slices N] [--skip-sweep] [--skip-service]
 *     [--store INSTANCES_PER_REQUEST,PARALLEL_REQUESTS] [--out FOLDER]
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { PACKAGE_ROOT, Provider } from "../config.js";
import { assembleVolume } from "../dicom/volume.js";
import { probeVolume } from "../measure/anatomy-probe.js";
import { retrieveSeries } from "../dicomweb/wado-rs.js";
import { setLogLevel } from "../log.js";
import { ModelRegistry } from "../models/registry.js";
import { contiguousSlices } from "./series-files.js";
import { flags } from "./command-line.js";
import { rawStowPost, rawWadoGet, type RawEndpoint } from "./baselines.js";
import { cpuSweep, type SweepPoint } from "./cpu-sweep.js";
import { type LocalOrthanc, startLocalOrthanc } from "../orthanc/local-orthanc.js";
import { type BenchOptions, type BenchRound, markdown, summarise } from "./bench-report.js";
import type { PipelineRoundRequest, PipelineRoundResult, RoundMode } from "./pipeline-round.js";
import { fmtMiB, fmtS, writeResults } from "./report.js";
import { probeService, type ServiceProbeResult } from "./service-probe.js";

type Options = BenchOptions;

const USAGE = "usage: node dist/bench/run-bench.js [--series FOLDER] [--slices N] [--model ID] [--provider auto|cpu|cuda|webgpu] " +
  "[--cpu-threads N] [--rounds N] [--mode streamed|unguarded|serial|both|guards|all] [--sweep-slices N] [--skip-sweep] [--skip-service] [--store N,P] [--out FOLDER]";

function parseOptions(argv: string[]): Options {
  const options: Options = {
    series: path.resolve(PACKAGE_ROOT, "..", "shared", "data", "ct", "lidc-idri-0002-ncct"),
    slices: undefined,
    model: "syncta-unet-small",
    provider: "auto",
    cpuThreads: 0,
    rounds: 6,
    mode: "all",
    sweepSlices: 16,
    skipSweep: false,
    skipService: false,
    store: { instancesPerRequest: 16, parallelRequests: 4 },
    out: path.join(PACKAGE_ROOT, "bench-results"),
  };
  for (const { name: flag, value, count } of flags(argv, USAGE)) {
    switch (flag) {
      case "--series": options.series = path.resolve(value()); break;
      case "--slices": options.slices = count(10); break;
      case "--model": options.model = value(); break;
      case "--provider": options.provider = Provider.parse(value()); break;
      case "--cpu-threads": options.cpuThreads = count(0); break;
      case "--rounds": options.rounds = count(1); break;
      case "--mode": {
        const v = value();
        if (!["streamed", "unguarded", "serial", "both", "guards", "all"].includes(v)) {
          throw new Error("--mode must be streamed, unguarded, serial, both (streamed and serial), guards (streamed and unguarded) or all");
        }
        options.mode = v as Options["mode"];
        break;
      }
      case "--sweep-slices": options.sweepSlices = count(8); break;
      case "--skip-sweep": options.skipSweep = true; break;
      case "--skip-service": options.skipService = true; break;
      case "--store": {
        const [perRequest, parallel] = value().split(",").map(Number);
        if (!Number.isInteger(perRequest) || !Number.isInteger(parallel) || perRequest! < 1 || parallel! < 1) {
          throw new Error("--store takes INSTANCES_PER_REQUEST,PARALLEL_REQUESTS, e.g. 16,2");
        }
        options.store = { instancesPerRequest: perRequest!, parallelRequests: parallel! };
        break;
      }
      case "--out": options.out = path.resolve(value()); break;
      case "--help": case "-h": process.stdout.write(`${USAGE}\n`); process.exit(0); break;
      default: throw new Error(`unknown option ${flag}; ${USAGE}`);
    }
  }
  if (!existsSync(options.series)) throw new Error(`series folder ${options.series} does not exist (--series FOLDER of .dcm files)`);
  return options;
}

const say = (message: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
const load = () => os.loadavg().map((v) => Math.round(v * 100) / 100);

function runPipelineRound(request: PipelineRoundRequest): Promise<PipelineRoundResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(PACKAGE_ROOT, "dist", "bench", "pipeline-round.js"), JSON.stringify(request)], {
      env: { ...process.env, CT_ENHANCE_LOG_LEVEL: "warn" },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child.on("exit", (code) => {
      const line = stdout.trim().split("\n").at(-1);
      if (code === 0 && line) resolve(JSON.parse(line) as PipelineRoundResult);
      else reject(new Error(`pipeline round exited with ${code}:\n${stderr}`));
    });
  });
}

/** Each round's mode: ABBA orders, so that no mode always runs first on a machine still settling. */
function roundMode(mode: Options["mode"], round: number): RoundMode {
  const cycles: Record<string, readonly RoundMode[]> = {
    both: ["streamed", "serial", "serial", "streamed"],
    guards: ["streamed", "unguarded", "unguarded", "streamed"],
    all: ["streamed", "unguarded", "serial", "serial", "unguarded", "streamed"],
  };
  const cycle = cycles[mode];
  return cycle ? cycle[(round - 1) % cycle.length]! : (mode as RoundMode);
}

/** The series' noise as the anatomy probe measures it (a noise-level model's input in the rounds without a probe). */
async function measuredNoise(endpoint: RawEndpoint, uids: { study: string; series: string }): Promise<number | undefined> {
  const volume = await assembleVolume(retrieveSeries({ root: endpoint.root, headers: { Authorization: endpoint.authorization } }, uids.study, uids.series));
  return (await probeVolume(volume)).probe.noiseHu;
}

async function seriesUids(orthanc: LocalOrthanc, seriesId: string): Promise<{ study: string; series: string }> {
  const series = await orthanc.rest<{ MainDicomTags: { SeriesInstanceUID: string }; ParentStudy: string }>(`/series/${seriesId}`);
  const study = await orthanc.rest<{ MainDicomTags: { StudyInstanceUID: string } }>(`/studies/${series.ParentStudy}`);
  return { study: study.MainDicomTags.StudyInstanceUID, series: series.MainDicomTags.SeriesInstanceUID };
}

async function collect(parts: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const all: Uint8Array[] = [];
  for await (const part of parts) all.push(part);
  return all;
}

function onnxruntimeVersion(): string {
  try {
    return execFileSync(process.execPath, ["-e", "console.log(require('onnxruntime-node/package.json').version)"], { cwd: PACKAGE_ROOT }).toString().trim();
  } catch {
    return "unknown";
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  setLogLevel("warn"); // the sweep's workers would log every run; the bench prints its own lines
  const startedAt = new Date();
  const loadAt: Record<string, number[]> = { start: load() };
  const models = await ModelRegistry.load(path.join(PACKAGE_ROOT, "models"));
  const model = models.get(options.model);
  say(`series ${options.series}${options.slices ? ` (${options.slices} contiguous slices from the middle)` : ""}, model ${model.manifest.id}, provider ${options.provider}, load ${loadAt.start!.join(" ")}`);

  const files = contiguousSlices(options.series, options.slices);
  const pipelineOrthanc = await startLocalOrthanc({ name: "pipeline" });
  const baselineOrthanc = await startLocalOrthanc({ name: "baseline" });
  const rounds: BenchRound[] = [];
  let stowSinglePostMs: number | undefined;
  let sweep: SweepPoint[] = [];
  let service: ServiceProbeResult | undefined;
  try {
    const upload = await pipelineOrthanc.upload(files);
    await baselineOrthanc.upload(files);
    if (upload.seriesIds.length !== 1) throw new Error(`the folder holds ${upload.seriesIds.length} series; give one series (--series)`);
    const uids = await seriesUids(pipelineOrthanc, upload.seriesIds[0]!);
    say(`uploaded ${fmtMiB(upload.bytes)} MiB into two fresh Orthancs`);
    const pipelineEndpoint: RawEndpoint = { root: pipelineOrthanc.dicomwebRoot, authorization: pipelineOrthanc.authorization };
    const baselineEndpoint: RawEndpoint = { root: baselineOrthanc.dicomwebRoot, authorization: baselineOrthanc.authorization };

    // One untimed read of the series first: the uploaded files are then in the page cache for every round alike.
    // Without it round 1's pipeline read them cold and its baseline warm (fetch + volume 2.2 s against 1.35 s in round 2).
    await rawWadoGet(pipelineEndpoint, uids.study, uids.series);

    const noiseHu = model.manifest.input.noiseLevel ? await measuredNoise(pipelineEndpoint, uids) : undefined;
    if (noiseHu !== undefined) say(`the model takes the measured noise as an input: the probe measures ${noiseHu} HU (once, outside the rounds)`);

    let derived: Uint8Array[] = [];
    for (let round = 1; round <= options.rounds; round += 1) {
      // Modes in ABBA order (streamed, serial, serial, streamed, ...) and the pipeline/baseline order alternating, so
      // that neither mode always runs first, on a machine that is still settling, and each mode gets both orders.
      const mode = roundMode(options.mode, round);
      const pipelineFirst = round % 2 === 1;
      let pipeline: PipelineRoundResult | undefined;
      let wado = { ms: 0, bytes: 0 };
      let stow = { ms: 0, bytes: 0, requests: 0 };
      const runPipeline = async () => {
        pipeline = await runPipelineRound({
          dicomwebRoot: pipelineOrthanc.dicomwebRoot,
          authorization: pipelineOrthanc.authorization,
          studyInstanceUID: uids.study,
          seriesInstanceUID: uids.series,
          modelsDir: path.join(PACKAGE_ROOT, "models"),
          modelId: options.model,
          provider: options.provider,
          cpuThreads: options.cpuThreads,
          mode,
          expectedSlices: files.length,
          round,
          noiseHu,
          ...options.store,
        });
        // The derived bytes, as stored, for the STOW-RS baseline; then out of the pipeline's Orthanc again.
        derived = await collect(retrieveSeries({ root: pipelineEndpoint.root, headers: { Authorization: pipelineEndpoint.authorization } }, uids.study, pipeline.derivedSeriesInstanceUID));
        await pipelineOrthanc.deleteSeries(pipeline.derivedSeriesInstanceUID);
      };
      const runBaseline = async () => {
        wado = await rawWadoGet(pipelineEndpoint, uids.study, uids.series);
        stow = await rawStowPost(baselineEndpoint, uids.study, derived, options.store.instancesPerRequest, options.store.parallelRequests);
        const derivedUid = pipeline?.derivedSeriesInstanceUID ?? rounds.at(-1)?.pipeline.derivedSeriesInstanceUID;
        if (derivedUid) await baselineOrthanc.deleteSeries(derivedUid);
      };
      loadAt[`round ${round}`] = load();
      if (pipelineFirst) {
        await runPipeline();
        await runBaseline();
      } else {
        await runBaseline();
        await runPipeline();
      }
      const p = pipeline!;
      rounds.push({ round, order: pipelineFirst ? "pipeline, baseline" : "baseline, pipeline", mode, pipeline: p, wadoGetMs: wado.ms, wadoBytes: wado.bytes, stowPostMs: stow.ms, stowBytes: stow.bytes });
      say(`round ${round} (${mode}, ${pipelineFirst ? "pipeline first" : "baseline first"}): fetch+volume ${fmtS(p.fetchVolumeMs)} s, ` +
        `infer ${fmtS(p.inferenceMs)} s on ${p.provider}, write+store ${mode === "serial" ? "" : "tail "}${fmtS(p.writeStoreMs)} s, ` +
        `total ${fmtS(p.totalMs)} s, peak RSS ${fmtMiB(p.peakRssBytes)} MiB; raw WADO ${fmtS(wado.ms)} s, raw STOW ${fmtS(stow.ms)} s`);
      if (round === 1) {
        const derivedUid = p.derivedSeriesInstanceUID;
        stowSinglePostMs = (await rawStowPost(baselineEndpoint, uids.study, derived, Number.POSITIVE_INFINITY, 1)).ms;
        await baselineOrthanc.deleteSeries(derivedUid);
      }
    }

    if (!options.skipSweep) {
      loadAt.sweep = load();
      const volume = await assembleVolume(retrieveSeries({ root: pipelineEndpoint.root, headers: { Authorization: pipelineEndpoint.authorization } }, uids.study, uids.series));
      const n = Math.min(options.sweepSlices, volume.slices);
      const from = Math.floor((volume.slices - n) / 2);
      const plane = volume.rows * volume.columns;
      const middle = { hu: volume.hu.slice(from * plane, (from + n) * plane), slices: n, rows: volume.rows, columns: volume.columns };
      say(`CPU sweep: ${n} slices, threads 1 and 2, batch 1, 4, 8`);
      sweep = await cpuSweep(model, middle, [1, 2], [1, 4, 8]);
      for (const point of sweep) say(`  threads ${point.cpuThreads} batch ${point.batchSize}: ${point.msPerSlice.toFixed(0)} ms/slice wall, ${point.cpuMsPerSlice.toFixed(0)} CPU`);
    }
  } finally {
    await pipelineOrthanc.stop();
    await baselineOrthanc.stop();
  }

  if (!options.skipService && files.length < 20) {
    say(`service: skipped, the default pipeline's rule needs at least 20 instances (this run has ${files.length})`);
  } else if (!options.skipService) {
    loadAt.service = load();
    say("service: ct-enhance serve on a fresh Orthanc, every reference model on the series, /health every 50 ms");
    const serviceOrthanc = await startLocalOrthanc({ name: "service", stableAgeSeconds: 2 });
    try {
      service = await probeService(serviceOrthanc, files, {
        provider: options.provider,
        cpuThreads: options.cpuThreads,
        orthancStableAgeSeconds: 2,
        timeoutMs: 30 * 60_000,
      });
      for (const job of service.jobs) say(`service: ${job.pipeline} (${job.model}) ${fmtS(job.jobMs)} s on ${job.provider}`);
      say(`service: /health during inference p50 ${service.health.duringInfer.p50Ms} ms, ` +
        `max ${service.health.duringInfer.maxMs} ms, ${service.health.duringInfer.over100Ms} of ${service.health.duringInfer.count} over 100 ms`);
    } finally {
      await serviceOrthanc.stop();
    }
  }
  loadAt.end = load();

  const summary = summarise(rounds, stowSinglePostMs);
  const host = os.hostname();
  const environment = {
    host,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    onnxruntimeNode: onnxruntimeVersion(),
    loadAverage1m5m15m: loadAt,
  };
  const result = { startedAt: startedAt.toISOString(), options, environment, summary, rounds, sweep, service };
  const stem = `${startedAt.toISOString().slice(0, 16).replace(/[:T]/g, "-")}-${host}`;
  const written = writeResults(options.out, stem, result, markdown(result));
  process.stdout.write(`${markdown(result)}\nwritten: ${written.json}, ${written.markdown}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exit(1);
});
