/**
 * The inference worker thread: onnxruntime-node's session.run() blocks its thread for the whole call, so it runs
 * here and the service's event loop (API, change feed) stays free. One warmed session per (model, provider), reused;
 * slices go through in batches (runSliceBatches). Out of device memory halves the batch, then falls back to the CPU
 * provider. On a GPU provider the manifest's fp16 variant runs when it has one (fp32 if it fails to load). A
 * two-stage detector's candidate classifier runs here too, on the candidates' patches, with the same providers.
 */
import * as ort from "onnxruntime-node";
import { setPriority } from "node:os";
import { parentPort } from "node:worker_threads";
import type { ModelManifest } from "./manifest.js";
import type {
  ClassifyRequest, ExecutionProvider, RunRequest, WarmupRequest, WorkerReply, WorkerRequest,
} from "./inference-protocol.js";
import { stallIfAsked } from "./fault-stall.js";
import {
  type BatchSession, fromFloat16Bits, isOutOfMemory, MissingNoiseLevelError, networkGeometry, runSliceBatches, toFloat16Bits,
} from "./slice-batches.js";

type Precision = "fp32" | "fp16";

interface LoadedSession extends BatchSession {
  provider: ExecutionProvider;
  precision: Precision;
}

const sessions = new Map<string, LoadedSession>();

/**
 * Inference runs niced: on Linux a priority is per thread, 0 names this worker thread, and the intra-op threads
 * onnxruntime starts from here inherit it. The event loop (API, change feed, the store's encoding) and Orthanc then
 * come first when the CPU is short, and inference loses nothing when it is not. Where the OS refuses, it is left.
 */
const INFERENCE_NICENESS = 10;
try {
  setPriority(0, INFERENCE_NICENESS);
} catch {
  // not permitted or not supported: run at the service's priority
}

/**
 * Largest batch on the CPU provider unless a request names one: batching buys a CPU almost nothing and each slice in
 * a batch holds the network's activations (bench-results/: threads x batch sweep and peak RSS).
 */
const CPU_BATCH_SIZE = 1;

function post(reply: WorkerReply, transfer: ArrayBuffer[] = []): void {
  parentPort!.postMessage(reply, transfer);
}

function tensorType(metadata: readonly ort.InferenceSession.ValueMetadata[], name: string): string | undefined {
  const value = metadata.find((m) => m.name === name);
  return value && value.isTensor ? value.type : undefined;
}

/** The names a session is run by: the model (for messages), its input tensor and its output tensor. */
interface TensorNames {
  id: string;
  input: string;
  output: string;
}

function batchSession(session: ort.InferenceSession, names: TensorNames, provider: ExecutionProvider, precision: Precision): LoadedSession {
  // An fp16 export may keep float32 inputs/outputs (keep_io_types) or take float16 ones: follow the model.
  const halfInput = tensorType(session.inputMetadata, names.input) === "float16";
  return {
    provider,
    precision,
    async runBatch(input, dims) {
      const tensor = halfInput ? new ort.Tensor("float16", toFloat16Bits(input), dims) : new ort.Tensor("float32", input, dims);
      const results = await session.run({ [names.input]: tensor }, [names.output]);
      const output = results[names.output];
      if (!output) throw new Error(`model ${names.id} returned no output named ${names.output}`);
      if (output.type === "float16") return fromFloat16Bits(output.data as Uint16Array);
      if (output.type !== "float32") throw new Error(`model ${names.id} output ${names.output} is ${output.type}; float32 or float16 is expected`);
      return output.data as Float32Array;
    },
  };
}

function openSession(
  manifest: ModelManifest,
  modelPath: string,
  fp16ModelPath: string | undefined,
  providers: ExecutionProvider[],
  cpuThreads: number,
  fp16OnCpu = false,
): Promise<LoadedSession> {
  const names = { id: manifest.id, input: manifest.input.name, output: manifest.output.name };
  return openNamedSession(`${manifest.id}@${manifest.version}`, names, modelPath, fp16ModelPath, providers, cpuThreads, fp16OnCpu);
}

/** The session of `modelKey` (one per providers, threads and precision), loaded on the first provider that can. */
async function openNamedSession(
  modelKey: string,
  names: TensorNames,
  modelPath: string,
  fp16ModelPath: string | undefined,
  providers: ExecutionProvider[],
  cpuThreads: number,
  fp16OnCpu: boolean,
): Promise<LoadedSession> {
  const key = `${modelKey}:${providers.join(",")}:${cpuThreads}:${fp16ModelPath ? (fp16OnCpu ? "fp16" : "auto") : "fp32"}`;
  const cached = sessions.get(key);
  if (cached) return cached;
  const errors: string[] = [];
  for (const provider of providers) {
    const options: ort.InferenceSession.SessionOptions = {
      executionProviders: [provider],
      graphOptimizationLevel: "all",
      // CPU memory arena on: the CPU runs one slice a batch (CPU_BATCH_SIZE), so the arena holds one slice's
      // activations and reuses them run after run. Without it every run mallocs and frees its buffers and glibc keeps
      // the freed memory in per-thread heaps: peak RSS of a streamed 261-slice run 676-891 MiB without the arena,
      // 561-574 MiB with it (bench, 2 cores). The arena keeps the peak of the largest batch run (about 1 GB at
      // batch 8 of 512x512 for the reference U-Net), so a larger CPU batch belongs in a worker of its own (the
      // bench's sweep does that).
      // No spinning: idle intra-op threads that spin burn about 40% more CPU per slice (measured on 2 cores),
      // taken from the event loop and Orthanc beside us.
      ...(provider === "cpu" ? { enableCpuMemArena: true, extra: { session: { intra_op: { allow_spinning: "0" } } } } : {}),
      ...(provider === "cpu" && cpuThreads > 0 ? { intraOpNumThreads: cpuThreads, interOpNumThreads: 1 } : {}),
    };
    // fp16 pays on GPUs; the CPU provider runs fp16 graphs slower than fp32 unless asked to (fp16OnCpu).
    const candidates: [string, Precision][] = fp16ModelPath && (provider !== "cpu" || fp16OnCpu)
      ? [[fp16ModelPath, "fp16"], [modelPath, "fp32"]]
      : [[modelPath, "fp32"]];
    for (const [file, precision] of candidates) {
      try {
        const session = await ort.InferenceSession.create(file, options);
        const loaded = batchSession(session, names, provider, precision);
        sessions.set(key, loaded);
        return loaded;
      } catch (error) {
        errors.push(`${provider} ${precision}: ${(error as Error).message.split("\n")[0]}`);
      }
    }
  }
  throw new Error(`no execution provider could load model ${names.id}: ${errors.join("; ")}`);
}

async function warmup(request: WarmupRequest): Promise<void> {
  const started = performance.now();
  const loaded = await openSession(request.manifest, request.modelPath, request.fp16ModelPath, request.providers, request.cpuThreads, request.fp16OnCpu);
  const [rows, columns] = request.manifest.input.size ?? [64, 64];
  const geometry = networkGeometry(request.manifest, { slices: 1, rows, columns });
  const input = new Float32Array(geometry.channels * geometry.rows * geometry.columns);
  await loaded.runBatch(input, [1, geometry.channels, geometry.rows, geometry.columns]);
  post({
    type: "warm",
    requestId: request.requestId,
    provider: loaded.provider,
    precision: loaded.precision,
    warmupMs: performance.now() - started,
  });
}

async function run(request: RunRequest): Promise<void> {
  const { manifest, slices, rows, columns, hu } = request;
  stallIfAsked(slices);
  const session = await openSession(manifest, request.modelPath, request.fp16ModelPath, request.providers, request.cpuThreads, request.fp16OnCpu);
  const started = performance.now();
  const result = await runSliceBatches({
    manifest,
    hu,
    shape: { slices, rows, columns },
    session,
    openCpu: () => openSession(manifest, request.modelPath, undefined, ["cpu"], request.cpuThreads),
    ...(request.batchSize ? { batchSize: request.batchSize } : { cpuBatchSize: CPU_BATCH_SIZE }),
    ...(request.noiseHu !== undefined ? { noiseHu: request.noiseHu } : {}),
    output: request.output === "stream"
      ? { stream: (first, values) => post({ type: "slices", requestId: request.requestId, first, values }, [values.buffer as ArrayBuffer]) }
      : "over-input",
    onProgress: (done, provider) =>
      post({ type: "progress", requestId: request.requestId, slicesDone: done, slicesTotal: slices, provider: provider as ExecutionProvider }),
  });
  const inferenceMs = performance.now() - started;
  const provider = result.provider as ExecutionProvider;
  const precision = provider === session.provider ? session.precision : "fp32";
  const base = { type: "result", requestId: request.requestId, provider, precision, batchSize: result.batchSize, inferenceMs, fallbacks: result.fallbacks } as const;
  if (!result.output) post(base); // streamed; the input goes with this thread's garbage
  else post({ ...base, output: result.output }, result.output.buffer instanceof SharedArrayBuffer ? [] : [result.output.buffer as ArrayBuffer]);
}

/**
 * Patches per classifier call: a 32^3 patch is 128 KiB and a small 3D network's activations a few MiB each, so a
 * batch this size stays small on any provider while the scan's few dozen candidates take one or two calls.
 */
const CLASSIFIER_BATCH_SIZE = 16;

async function classify(request: ClassifyRequest): Promise<void> {
  const { classifier, count, patches } = request;
  const names = { id: `${request.modelId} (candidate classifier)`, input: classifier.input, output: classifier.output };
  // Keyed by its file too: a session is never taken for another model's classifier of the same id and version.
  const key = `${request.modelId}@${request.modelVersion}:classifier:${request.classifierPath}`;
  const session = await openNamedSession(
    key, names, request.classifierPath, request.fp16ClassifierPath, request.providers, request.cpuThreads, request.fp16OnCpu ?? false,
  );
  const started = performance.now();
  const p = classifier.patchVoxels;
  const size = p ** 3;
  if (patches.length !== count * size) throw new Error(`${count} patches of ${p}^3 need ${count * size} values, got ${patches.length}`);
  const probabilities = new Float32Array(count);
  for (let first = 0; first < count; first += CLASSIFIER_BATCH_SIZE) {
    const n = Math.min(CLASSIFIER_BATCH_SIZE, count - first);
    const scores = await session.runBatch(patches.slice(first * size, (first + n) * size), [n, 1, p, p, p]);
    if (scores.length !== n) throw new Error(`model ${names.id} gave ${scores.length} values for ${n} patches; [N, 1] is expected`);
    probabilities.set(scores, first);
  }
  post({
    type: "scores",
    requestId: request.requestId,
    provider: session.provider,
    precision: session.precision,
    inferenceMs: performance.now() - started,
    probabilities,
  }, [probabilities.buffer]);
}

parentPort!.on("message", (request: WorkerRequest) => {
  // Read at a JavaScript boundary (never during session.run), so the thread ends where onnxruntime is not in a call.
  if (request.type === "retire") process.exit(0);
  const work = request.type === "run" ? run(request) : request.type === "classify" ? classify(request) : warmup(request);
  work.catch((error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    // Out of memory even on the CPU, or a provider that failed to load, may pass; a shape mismatch will not.
    // A missing noise level will not appear on a retry either.
    const retryable = !(error instanceof MissingNoiseLevelError) && (isOutOfMemory(message) || /no execution provider/.test(message));
    post({ type: "error", requestId: request.requestId, message, retryable });
  });
});
