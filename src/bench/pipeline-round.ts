/**
 * One timed pass of the pipeline's stages, in a process of its own (so its peak RSS is the pipeline's alone), called
 * directly as the runner calls them: WADO-RS retrieve + volume assembly, inference in the worker, derived CT write +
 * STOW-RS store. Prints one JSON line (PipelineRoundResult) on stdout.
 *
 * node dist/bench/pipeline-round.js '<PipelineRoundRequest as JSON>'
 */
import { writeDerivedCtSeries, type DerivedSeriesIdentity } from "../dicom/derived-ct.js";
import { deterministicUid } from "../dicom/uid.js";
import { retrieveSeries } from "../dicomweb/wado-rs.js";
import { assembleVolume } from "../dicom/volume.js";
import type { DicomwebEndpoint } from "../dicomweb/endpoint.js";
import type { Provider } from "../config.js";
import { InferenceService } from "../models/inference.js";
import { ModelRegistry } from "../models/registry.js";
import { storeDerivedCtSeries } from "../pipeline/stages/store-derived-ct.js";
import { SOFTWARE_NAME, SOFTWARE_VERSION } from "../version.js";
import { type MemoryAtPeak, MemorySampler } from "./memory.js";

export interface PipelineRoundRequest {
  dicomwebRoot: string;
  authorization: string;
  studyInstanceUID: string;
  seriesInstanceUID: string;
  modelsDir: string;
  modelId: string;
  provider: Provider;
  cpuThreads: number;
  /** Write the model output over the input volume (one float32 volume less). */
  inPlace: boolean;
  /** Distinguishes the derived series of each round (new UIDs). */
  round: number;
  instancesPerRequest: number;
  parallelRequests: number;
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
  /** InferenceService.run, main thread's view (includes transfer to and from the worker). */
  inferenceMs: number;
  /** The worker's own time for all batches. */
  workerInferenceMs: number;
  /** CPU time of the process (all threads) during inference. */
  inferenceCpuMs: number;
  /** storeDerivedCtSeries: write (encode) + STOW-RS store, overlapped as the service does it. */
  writeStoreMs: number;
  /** writeDerivedCtSeries alone, drained afterwards into nothing (to split encode from store). */
  encodeOnlyMs: number;
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

export function benchIdentity(sourceSeriesUID: string, round: number, model: { id: string; version: string; name: string }): DerivedSeriesIdentity {
  const seriesInstanceUID = deterministicUid(SOFTWARE_NAME, "bench-series", sourceSeriesUID, model.id, round);
  return {
    seriesInstanceUID,
    sopInstanceUID: (slice) => deterministicUid(SOFTWARE_NAME, "bench-instance", seriesInstanceUID, slice),
    seriesNumber: 990_000 + round,
    seriesDescription: "ct-enhance bench AI-generated NOT FOR DIAGNOSTIC USE",
    derivationDescription: `ct-enhance bench round ${round}, model ${model.id} ${model.version}. AI-generated image, not for diagnostic use.`,
    model,
    software: { manufacturer: SOFTWARE_NAME, version: SOFTWARE_VERSION },
    contentDate: new Date(),
  };
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
  const volume = await assembleVolume(timedParts());
  const fetchVolumeMs = performance.now() - started;
  memory.end();

  memory.begin("infer");
  started = performance.now();
  const cpu = process.cpuUsage();
  const result = await inference.run(model, volume, undefined, { inPlace: request.inPlace });
  const cpuUsed = process.cpuUsage(cpu);
  volume.hu = result.hu;
  const inferenceMs = performance.now() - started;
  memory.end();

  memory.begin("write+store");
  const identity = benchIdentity(request.seriesInstanceUID, request.round, model.manifest);
  started = performance.now();
  const stored = await storeDerivedCtSeries(endpoint, volume, result.output, identity, {
    instancesPerRequest: request.instancesPerRequest,
    parallelRequests: request.parallelRequests,
  }, () => undefined);
  const writeStoreMs = performance.now() - started;
  memory.end();
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  const sampled = memory.stop();
  await inference.close(); // the service keeps its worker warm: it is there during write+store too

  started = performance.now();
  let derivedBytes = 0;
  for (const instance of writeDerivedCtSeries(volume, result.output, identity)) derivedBytes += instance.byteLength;
  const encodeOnlyMs = performance.now() - started;

  return {
    slices: volume.slices,
    rows: volume.rows,
    columns: volume.columns,
    provider: result.provider,
    precision: result.precision,
    batchSize: result.batchSize,
    fallbacks: result.fallbacks,
    warmupMs: warm.warmupMs,
    wadoWaitMs,
    fetchVolumeMs,
    inferenceMs,
    workerInferenceMs: result.inferenceMs,
    inferenceCpuMs: (cpuUsed.user + cpuUsed.system) / 1000,
    writeStoreMs,
    encodeOnlyMs,
    derivedSeriesInstanceUID: identity.seriesInstanceUID,
    derivedBytes,
    storedInstances: stored,
    peakRssBytes,
    sampledPeakRssBytes: sampled.peak,
    peakRssStage: sampled.peakStage,
    rssAtStageEnd: sampled.atStageEnd,
    peakByStage: sampled.peakByStage,
  };
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
