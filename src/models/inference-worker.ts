/**
 * The inference worker thread: onnxruntime-node's session.run() blocks its thread for the whole call, so it runs
 * here and the service's event loop (API, change feed) stays free. One warmed session per (model, provider), reused;
 * slices go through in batches. Out of device memory halves the batch, then falls back to the CPU provider.
 */
import * as ort from "onnxruntime-node";
import { parentPort } from "node:worker_threads";
import type { ModelManifest } from "./manifest.js";
import type { ExecutionProvider, RunRequest, WarmupRequest, WorkerReply, WorkerRequest } from "./inference-protocol.js";
import { fillInputBatch, networkGeometry, readOutputBatch } from "./slice-batches.js";

interface LoadedSession {
  session: ort.InferenceSession;
  provider: ExecutionProvider;
}

const sessions = new Map<string, LoadedSession>();

function post(reply: WorkerReply, transfer: ArrayBuffer[] = []): void {
  parentPort!.postMessage(reply, transfer);
}

const OUT_OF_MEMORY = /out of memory|failed to allocate|cudaMalloc|bad_alloc|OOM|CUBLAS_STATUS_ALLOC_FAILED/i;

async function openSession(
  manifest: ModelManifest,
  modelPath: string,
  providers: ExecutionProvider[],
  cpuThreads: number,
): Promise<LoadedSession> {
  const key = `${manifest.id}@${manifest.version}:${providers.join(",")}`;
  const cached = sessions.get(key);
  if (cached) return cached;
  const errors: string[] = [];
  for (const provider of providers) {
    try {
      const options: ort.InferenceSession.SessionOptions = {
        executionProviders: [provider],
        graphOptimizationLevel: "all",
        ...(provider === "cpu" && cpuThreads > 0 ? { intraOpNumThreads: cpuThreads } : {}),
      };
      const session = await ort.InferenceSession.create(modelPath, options);
      const loaded = { session, provider };
      sessions.set(key, loaded);
      return loaded;
    } catch (error) {
      errors.push(`${provider}: ${(error as Error).message.split("\n")[0]}`);
    }
  }
  throw new Error(`no execution provider could load model ${manifest.id}: ${errors.join("; ")}`);
}

async function runBatch(
  loaded: LoadedSession,
  manifest: ModelManifest,
  input: Float32Array,
  dims: number[],
): Promise<Float32Array> {
  const feeds = { [manifest.input.name]: new ort.Tensor("float32", input, dims) };
  const results = await loaded.session.run(feeds, [manifest.output.name]);
  const output = results[manifest.output.name];
  if (!output) throw new Error(`model ${manifest.id} returned no output named ${manifest.output.name}`);
  return output.data as Float32Array;
}

async function warmup(request: WarmupRequest): Promise<void> {
  const started = performance.now();
  const loaded = await openSession(request.manifest, request.modelPath, request.providers, request.cpuThreads);
  const [rows, columns] = request.manifest.input.size ?? [64, 64];
  const geometry = networkGeometry(request.manifest, { slices: 1, rows, columns });
  const input = new Float32Array(geometry.channels * geometry.rows * geometry.columns);
  await runBatch(loaded, request.manifest, input, [1, geometry.channels, geometry.rows, geometry.columns]);
  post({ type: "warm", requestId: request.requestId, provider: loaded.provider, warmupMs: performance.now() - started });
}

async function run(request: RunRequest): Promise<void> {
  const { manifest, slices, rows, columns, hu } = request;
  const shape = { slices, rows, columns };
  const geometry = networkGeometry(manifest, shape);
  const output = new Float32Array(slices * rows * columns);
  let providers = request.providers;
  let loaded = await openSession(manifest, request.modelPath, providers, request.cpuThreads);
  let batchSize = Math.max(1, Math.min(manifest.batchSize, slices));
  const netPlane = geometry.channels * geometry.rows * geometry.columns;
  let tensor = new Float32Array(batchSize * netPlane);
  const started = performance.now();
  let first = 0;
  while (first < slices) {
    const count = Math.min(batchSize, slices - first);
    fillInputBatch(manifest, hu, shape, geometry, first, count, tensor);
    try {
      const dims = [count, geometry.channels, geometry.rows, geometry.columns];
      const result = await runBatch(loaded, manifest, tensor.subarray(0, count * netPlane), dims);
      readOutputBatch(manifest, result, shape, geometry, first, count, output);
    } catch (error) {
      const message = (error as Error).message;
      if (!OUT_OF_MEMORY.test(message)) throw error;
      if (batchSize > 1) {
        batchSize = Math.max(1, Math.floor(batchSize / 2));
        continue; // same slices again, smaller batch
      }
      if (loaded.provider === "cpu") throw error;
      providers = ["cpu"];
      loaded = await openSession(manifest, request.modelPath, providers, request.cpuThreads);
      batchSize = Math.max(1, Math.min(manifest.batchSize, slices));
      tensor = new Float32Array(batchSize * netPlane);
      continue;
    }
    first += count;
    post({ type: "progress", requestId: request.requestId, slicesDone: first, slicesTotal: slices, provider: loaded.provider });
  }
  post(
    {
      type: "result",
      requestId: request.requestId,
      provider: loaded.provider,
      batchSize,
      inferenceMs: performance.now() - started,
      hu,
      output,
    },
    [hu.buffer as ArrayBuffer, output.buffer as ArrayBuffer],
  );
}

parentPort!.on("message", (request: WorkerRequest) => {
  const work = request.type === "run" ? run(request) : warmup(request);
  work.catch((error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    // Out of memory even on the CPU, or a provider that failed to load, may pass; a shape mismatch will not.
    const retryable = OUT_OF_MEMORY.test(message) || /no execution provider/.test(message);
    post({ type: "error", requestId: request.requestId, message, retryable });
  });
});
