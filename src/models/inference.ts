/**
 * The main thread's side of inference: one worker thread, requests queued one at a time (one accelerator), the
 * volume transferred (not copied) to the worker and back.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { Provider } from "../config.js";
import { logger } from "../log.js";
import type { ExecutionProvider, WorkerReply, WorkerRequest } from "./inference-protocol.js";
import { providerOrder } from "./providers.js";
import type { RegisteredModel } from "./registry.js";

const log = logger("inference");

export interface InferenceResult {
  provider: ExecutionProvider;
  batchSize: number;
  inferenceMs: number;
  /** The input HU, handed back by the worker. */
  hu: Float32Array;
  output: Float32Array;
}

export class InferenceError extends Error {
  override readonly name = "InferenceError";
  constructor(message: string, readonly retryable: boolean) {
    super(message);
  }
}

/** The compiled worker: next to this file when running from dist/, in dist/ when running from src/ (tests). */
function workerFile(): URL {
  const here = new URL("./inference-worker.js", import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  const built = new URL("../../dist/models/inference-worker.js", import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new Error("dist/models/inference-worker.js is missing: run `npm run build` first");
}

interface Pending {
  resolve: (reply: WorkerReply) => void;
  reject: (error: Error) => void;
  onProgress?: (done: number, total: number, provider: ExecutionProvider) => void;
}

export class InferenceService {
  private worker: Worker | undefined;
  private closing = false;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Serialises requests: one model run at a time on the one accelerator. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly provider: Provider, private readonly cpuThreads: number) {}

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(workerFile());
    worker.on("message", (reply: WorkerReply) => {
      const pending = this.pending.get(reply.requestId);
      if (!pending) return;
      if (reply.type === "progress") {
        pending.onProgress?.(reply.slicesDone, reply.slicesTotal, reply.provider);
        return;
      }
      this.pending.delete(reply.requestId);
      pending.resolve(reply);
    });
    worker.on("error", (error) => this.failAll(`inference worker crashed: ${error.message}`));
    worker.on("exit", (code) => {
      this.worker = undefined;
      if (code !== 0 && !this.closing) this.failAll(`inference worker exited with code ${code}`);
    });
    this.worker = worker;
    return worker;
  }

  private failAll(message: string): void {
    log.error(message);
    for (const pending of this.pending.values()) pending.reject(new InferenceError(message, true));
    this.pending.clear();
  }

  private send(request: WorkerRequest, transfer: ArrayBuffer[], onProgress?: Pending["onProgress"]): Promise<WorkerReply> {
    const job = this.queue.then(
      () =>
        new Promise<WorkerReply>((resolve, reject) => {
          this.pending.set(request.requestId, { resolve, reject, ...(onProgress ? { onProgress } : {}) });
          this.ensureWorker().postMessage(request, transfer);
        }),
    );
    this.queue = job.catch(() => undefined);
    return job;
  }

  /** Loads the model and runs it once on a small input, so the first real series does not pay for it. */
  async warmup(model: RegisteredModel): Promise<{ provider: ExecutionProvider; warmupMs: number }> {
    const reply = await this.send(
      {
        type: "warmup",
        requestId: this.nextId++,
        manifest: model.manifest,
        modelPath: model.modelPath,
        providers: providerOrder(this.provider),
        cpuThreads: this.cpuThreads,
      },
      [],
    );
    if (reply.type === "error") throw new InferenceError(reply.message, reply.retryable);
    if (reply.type !== "warm") throw new InferenceError(`unexpected worker reply ${reply.type}`, false);
    return { provider: reply.provider, warmupMs: reply.warmupMs };
  }

  /** Runs the model on every slice. `hu` is transferred to the worker: use the returned `hu` afterwards. */
  async run(
    model: RegisteredModel,
    volume: { hu: Float32Array; slices: number; rows: number; columns: number },
    onProgress?: (done: number, total: number, provider: ExecutionProvider) => void,
  ): Promise<InferenceResult> {
    const reply = await this.send(
      {
        type: "run",
        requestId: this.nextId++,
        manifest: model.manifest,
        modelPath: model.modelPath,
        providers: providerOrder(this.provider),
        cpuThreads: this.cpuThreads,
        slices: volume.slices,
        rows: volume.rows,
        columns: volume.columns,
        hu: volume.hu,
      },
      [volume.hu.buffer as ArrayBuffer],
      onProgress,
    );
    if (reply.type === "error") throw new InferenceError(reply.message, reply.retryable);
    if (reply.type !== "result") throw new InferenceError(`unexpected worker reply ${reply.type}`, false);
    return {
      provider: reply.provider,
      batchSize: reply.batchSize,
      inferenceMs: reply.inferenceMs,
      hu: reply.hu,
      output: reply.output,
    };
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.worker?.terminate();
    this.worker = undefined;
  }
}
