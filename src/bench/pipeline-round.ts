/**
 * One timed pass of the pipeline's stages, in a process of its own (so its peak RSS is the pipeline's alone), called
 * as the runner calls them: WADO-RS retrieve + volume assembly, then either
 * - "streamed" (what the service does): the anatomy probe, then inference in the worker with the derived CT measured
 *   for the output checks and encoded while the model runs (held on disk), and stored over STOW-RS once the checks
 *   pass (deriveSeries, the derived-series output plan's own routine; a rejected output stores nothing). A detection
 *   model's streamed round is the service's findings plan: the map, the candidate classifier when it has one, the
 *   findings check, then its SEG and SR (so its peak holds what a job holds: the map and a copy of the HU). Or
 * - "unguarded": the same streamed path without the safeguards, as the service ran before intended use and output
 *   checks existed: no probe, nothing measured, each output slice encoded and stored over STOW-RS while the model
 *   computes the next (nothing held back for a verdict). Set against "streamed" it is what the safeguards cost.
 * - "serial": inference into a whole output volume, then write + store, one stage after the other, so each stage's
 *   own cost can be set against its raw baseline.
 * "unguarded" and "serial" write a derived CT: image models only.
 * Prints one JSON line (PipelineRoundResult) on stdout.
 *
 * node dist/bench/pipeline-round.js '<PipelineRoundRequest as JSON>'
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { derivedCtWriter, writeDerivedCtSeries } from "../dicom/derived-ct.js";
import type { DerivedSeriesIdentity } from "../dicom/derived-ct-modules.js";
import { deterministicUid } from "../dicom/uid.js";
import { retrieveSeries } from "../dicomweb/wado-rs.js";
import { assembleVolume } from "../dicom/volume.js";
import type { DicomwebEndpoint } from "../dicomweb/endpoint.js";
import type { Provider } from "../config.js";
import { InferenceService, type InferenceSummary } from "../models/inference.js";
import { ModelRegistry, type RegisteredModel } from "../models/registry.js";
import { OutputSliceQueue, wholeOutput } from "../pipeline/output-slices.js";
import { probeVolume } from "../measure/anatomy-probe.js";
import type { Job } from "../jobs/job-records.js";
import { derivedCtInstances, deriveSeries } from "../pipeline/outputs/derived-series.js";
import { findingsPlan } from "../pipeline/outputs/findings.js";
import type { PlanIo, PlanOutcome, PlanTarget } from "../pipeline/outputs/output-plan.js";
import type { PipelineDefinition } from "../pipeline/pipelines.js";
import { storeOutputInstances } from "../pipeline/stages/store-instances.js";
import { SOFTWARE_NAME, SOFTWARE_VERSION } from "../version.js";
import { type MemoryAtPeak, MemorySampler } from "./memory.js";

export type RoundMode = "streamed" | "unguarded" | "serial";

export interface PipelineRoundRequest {
  dicomwebRoot: string;
  authorization: string;
  studyInstanceUID: string;
  seriesInstanceUID: string;
  modelsDir: string;
  modelId: string;
  provider: Provider;
  cpuThreads: number;
  mode: RoundMode;
  /** Orthanc's instance count, as the runner passes it: the volume is allocated once. */
  expectedSlices: number;
  /** Distinguishes the derived series of each round (new UIDs). */
  round: number;
  instancesPerRequest: number;
  parallelRequests: number;
  /**
   * The series' noise as the probe measures it, for a model with a noise-level input (FFDNet's map) in the rounds
   * that run no probe (unguarded, serial): measured once by the bench, outside every round's time.
   */
  noiseHu: number | undefined;
}

export interface PipelineRoundResult {
  slices: number;
  rows: number;
  columns: number;
  provider: string;
  precision: string;
  batchSize: number;
  fallbacks: string[];
  warmupMs: number;
  /** Time spent waiting for the next WADO-RS part (transfer), inside the volume stage. */
  wadoWaitMs: number;
  /** retrieveSeries + assembleVolume, start to volume (transfer + parse + HU). */
  fetchVolumeMs: number;
  mode: RoundMode;
  /** Inference as the main thread sees it: start -> last output slice received (transfers included). */
  inferenceMs: number;
  /** The worker's own time for all batches. */
  workerInferenceMs: number;
  /** CPU time of the process (all threads) during inference. */
  inferenceCpuMs: number;
  /**
   * Write (encode) + STOW-RS store: serial, the whole stage after inference; streamed, only its tail, from the
   * model's last slice to the last STOW-RS answer (the rest ran during inference).
   */
  writeStoreMs: number;
  /** Fetch start -> last instance stored. */
  totalMs: number;
  /** writeDerivedCtSeries alone, drained into nothing (to split encode from store); serial rounds only. */
  encodeOnlyMs: number | undefined;
  /** The anatomy probe (streamed rounds: the service's way); in the total, not in inferenceMs. */
  probeMs: number | undefined;
  /** The output checks' verdicts, and whether they rejected the output (nothing stored); streamed rounds. */
  checks: string[];
  rejected: boolean;
  /** What the round stored, the series the STOW-RS baseline posts again: the derived CT, or a detector's SEG (or SR). */
  derivedSeriesInstanceUID: string;
  derivedBytes: number;
  storedInstances: number;
  peakRssBytes: number;
  sampledPeakRssBytes: number;
  peakRssStage: string;
  rssAtStageEnd: Record<string, number>;
  /** Per stage: the highest RSS sampled, with V8's JS heap and ArrayBuffer bytes at that moment (main thread only). */
  peakByStage: Record<string, MemoryAtPeak>;
}

export function benchIdentity(sourceSeriesUID: string, round: number, model: { id: string; version: string; name: string; sha256: string }): DerivedSeriesIdentity {
  const seriesInstanceUID = deterministicUid(SOFTWARE_NAME, "bench-series", sourceSeriesUID, model.id, round);
  return {
    seriesInstanceUID,
    sopInstanceUID: (slice) => deterministicUid(SOFTWARE_NAME, "bench-instance", seriesInstanceUID, slice),
    seriesNumber: 990_000 + round,
    seriesDescription: "ct-enhance bench AI-generated NOT FOR DIAGNOSTIC USE",
    derivationDescription: `ct-enhance bench round ${round}, model ${model.id} ${model.version}. AI-generated image, not for diagnostic use.`,
    model: { id: model.id, version: model.version, name: model.name, sha256: model.sha256 },
    software: { manufacturer: SOFTWARE_NAME, version: SOFTWARE_VERSION },
    contentDate: new Date(),
  };
}

/** The job a detection round's findings plan is for: the round is the run, so each round's SR and SEG are new. */
function benchTarget(request: PipelineRoundRequest, model: RegisteredModel): PlanTarget {
  const job = { sourceSeriesUid: request.seriesInstanceUID, pipeline: "bench", modelVersion: model.manifest.version, run: request.round } as Job;
  const pipeline = { id: "bench", outputLabel: "bench" } as PipelineDefinition;
  return { job, pipeline, pipelineOrdinal: 0, model };
}

async function main(request: PipelineRoundRequest): Promise<PipelineRoundResult> {
  const memory = new MemorySampler(20);
  memory.begin("load+warmup");
  const endpoint: DicomwebEndpoint = { root: request.dicomwebRoot, headers: { Authorization: request.authorization } };
  const models = await ModelRegistry.load(request.modelsDir);
  const model = models.get(request.modelId);
  const inference = new InferenceService(request.provider, request.cpuThreads);
  const warm = await inference.warmup(model);
  memory.end();

  memory.begin("fetch+volume");
  let started = performance.now();
  let wadoWaitMs = 0;
  async function* timedParts(): AsyncGenerator<Uint8Array> {
    const parts = retrieveSeries(endpoint, request.studyInstanceUID, request.seriesInstanceUID);
    for (;;) {
      const asked = performance.now();
      const next = await parts.next();
      wadoWaitMs += performance.now() - asked;
      if (next.done) return;
      yield next.value;
    }
  }
  const volume = await assembleVolume(timedParts(), { expectedSlices: request.expectedSlices });
  const fetchVolumeMs = performance.now() - started;
  memory.end();

  const identity = benchIdentity(request.seriesInstanceUID, request.round, model.manifest);
  // On disk, as the service's `<dataDir>/spool` is (os.tmpdir() may be a RAM disk elsewhere: say so with TMPDIR).
  const spoolDir = mkdtempSync(path.join(os.tmpdir(), "ct-enhance-bench-spool-"));
  const store = { instancesPerRequest: request.instancesPerRequest, parallelRequests: request.parallelRequests };
  const cpu = process.cpuUsage();
  let summary: InferenceSummary | undefined;
  let inferenceMs: number;
  let writeStoreMs: number;
  let stored: number;
  let encodeOnlyMs: number | undefined;
  let probeMs: number | undefined;
  let rejected = false;
  let checks: string[] = [];
  let cpuUsed: NodeJS.CpuUsage;
  let derivedSeriesUid = identity.seriesInstanceUID;
  if (request.mode !== "streamed" && model.manifest.output.meaning !== "hu-image") {
    throw new Error(`--mode ${request.mode} writes a derived CT; ${model.manifest.id} is a ${model.manifest.task} model: use --mode streamed`);
  }
  started = performance.now();
  if (request.mode === "streamed") {
    memory.begin("probe");
    const probeStarted = performance.now();
    const probed = await probeVolume(volume);
    probeMs = performance.now() - probeStarted;
    memory.end();
    memory.begin("infer+store");
    let inferenceDoneAt = 0;
    const io: PlanIo = {
      inference,
      endpoint,
      store,
      spoolDir,
      probed,
      overridden: undefined,
      onProgress: () => undefined,
      onInferenceDone: (done) => {
        inferenceDoneAt = performance.now();
        summary = done;
        cpuUsed = process.cpuUsage(cpu);
        memory.end();
        memory.begin("store tail");
      },
    };
    let run: Pick<PlanOutcome, "stored" | "rejected" | "checks">;
    if (model.manifest.output.meaning === "probability-map") {
      const outcome = await findingsPlan(benchTarget(request, model)).produce(volume, io);
      // The SEG when there are findings (the larger object), else the SR: what the STOW-RS baseline posts again.
      derivedSeriesUid = outcome.outputs.at(-1)?.seriesInstanceUID ?? derivedSeriesUid;
      run = outcome;
    } else {
      run = await deriveSeries(model, volume, identity, io);
    }
    memory.end();
    stored = run.stored;
    rejected = run.rejected;
    checks = run.checks.map((c) => `${c.passed ? "passed" : "failed"}: ${c.text}`);
    inferenceMs = inferenceDoneAt - started - probeMs;
    writeStoreMs = performance.now() - inferenceDoneAt;
  } else if (request.mode === "unguarded") {
    memory.begin("infer+store");
    let inferenceDoneAt = 0;
    const output = new OutputSliceQueue();
    const inferring = inference.run(model, volume, { streamTo: (first, values) => output.push({ first, values }) }, noiseOption(model, request)).then(
      (done) => {
        inferenceDoneAt = performance.now();
        summary = done;
        cpuUsed = process.cpuUsage(cpu);
        output.end();
        memory.end();
        memory.begin("store tail");
      },
      (error: unknown) => {
        output.fail(error);
        throw error;
      },
    );
    const instances = derivedCtInstances(derivedCtWriter(volume, identity), volume.rows * volume.columns, output);
    const storing = storeOutputInstances(endpoint, volume.studyInstanceUID, instances, store);
    [, stored] = await Promise.all([inferring, storing]);
    memory.end();
    inferenceMs = inferenceDoneAt - started;
    writeStoreMs = performance.now() - inferenceDoneAt;
  } else {
    memory.begin("infer");
    const result = await inference.run(model, volume, "over-input", noiseOption(model, request));
    cpuUsed = process.cpuUsage(cpu);
    summary = result;
    inferenceMs = performance.now() - started;
    memory.end();
    memory.begin("write+store");
    const storeStarted = performance.now();
    const instances = derivedCtInstances(derivedCtWriter(volume, identity), volume.rows * volume.columns, wholeOutput(result.output));
    stored = await storeOutputInstances(endpoint, volume.studyInstanceUID, instances, store);
    writeStoreMs = performance.now() - storeStarted;
    memory.end();
    const encodeStarted = performance.now();
    let bytes = 0;
    for (const instance of writeDerivedCtSeries(volume, result.output, identity)) bytes += instance.byteLength;
    encodeOnlyMs = bytes > 0 ? performance.now() - encodeStarted : undefined;
  }
  const totalMs = fetchVolumeMs + (performance.now() - started);
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  const sampled = memory.stop();
  await inference.close();
  rmSync(spoolDir, { recursive: true, force: true });
  const derivedBytes = rejected ? 0 : await seriesBytes(endpoint, volume.studyInstanceUID, derivedSeriesUid);

  return {
    slices: volume.slices,
    rows: volume.rows,
    columns: volume.columns,
    mode: request.mode,
    provider: summary!.provider,
    precision: summary!.precision,
    batchSize: summary!.batchSize,
    fallbacks: summary!.fallbacks,
    warmupMs: warm.warmupMs,
    wadoWaitMs,
    fetchVolumeMs,
    inferenceMs,
    workerInferenceMs: summary!.inferenceMs,
    inferenceCpuMs: (cpuUsed!.user + cpuUsed!.system) / 1000,
    writeStoreMs,
    totalMs,
    encodeOnlyMs,
    probeMs,
    checks,
    rejected,
    derivedSeriesInstanceUID: derivedSeriesUid,
    derivedBytes,
    storedInstances: stored,
    peakRssBytes,
    sampledPeakRssBytes: sampled.peak,
    peakRssStage: sampled.peakStage,
    rssAtStageEnd: sampled.atStageEnd,
    peakByStage: sampled.peakByStage,
  };
}

/** The noise-level input of a model that has one, from the bench's one measure (the probe's figure). */
function noiseOption(model: RegisteredModel, request: PipelineRoundRequest): { noiseHu?: number } {
  if (!model.manifest.input.noiseLevel) return {};
  if (request.noiseHu === undefined) throw new Error(`${model.manifest.id} takes the measured noise as an input and the probe found none`);
  return { noiseHu: request.noiseHu };
}

/** Bytes of the stored series as WADO-RS returns it (to check that what was stored is what the baseline posts). */
async function seriesBytes(endpoint: DicomwebEndpoint, study: string, series: string): Promise<number> {
  let bytes = 0;
  for await (const part of retrieveSeries(endpoint, study, series)) bytes += part.byteLength;
  return bytes;
}

const argument = process.argv[2];
if (!argument) {
  process.stderr.write("usage: node dist/bench/pipeline-round.js '<request JSON>' (started by run-bench.js)\n");
  process.exit(2);
}
main(JSON.parse(argument) as PipelineRoundRequest).then(
  (result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  },
  (error: unknown) => {
    process.stderr.write(`pipeline round failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    process.exit(1);
  },
);
