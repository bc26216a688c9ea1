/**
 * The main thread's side of inference: one worker thread, requests queued one at a time (one accelerator), the
 * volume transferred (not copied) to the worker and back.
 */
import path from "node:path";
import { Worker } from "node:worker_threads";
import { compiledWorkerFile } from "../compiled-worker.js";
import type { Precision, Provider } from "../config.js";
import { logger } from "../log.js";
import { OperationalError } from "../stage-error.js";
import type {
  ClassifyRequest, ExecutionProvider, ModelFields, RunRequest, WarmupRequest, WorkerReply, WorkerRequest,
} from "./inference-protocol.js";
import { providerOrder } from "./providers.js";
import { type RegisteredModel, sha256OfFile } from "./registry.js";

const log = logger("inference");

export type ProgressListener = (done: number, total: number, provider: ExecutionProvider) => void;
/** Output slices [first, first + values.length / (rows x columns)) of a streamed run. */
export type SlicesListener = (first: number, values: Float32Array) => void;
type VolumeInput = { hu: Float32Array; slices: number; rows: number; columns: number };

export interface InferenceSummary {
  provider: ExecutionProvider;
  /** The model file that ran: fp32, or the manifest's fp16 variant (GPU providers only). */
  precision: "fp32" | "fp16";
  batchSize: number;
  inferenceMs: number;
  /** Out-of-memory fallbacks taken, in order (smaller batch, then CPU). */
  fallbacks: string[];
}

/** Where a run's output goes: streamed to a listener batch by batch, or written over the input volume. */
export type OutputSink = { streamTo: SlicesListener } | "over-input";

/** How long a request may wait for the worker's answer, and the limit in words (the infer stage's timeout). */
export interface WorkerDeadline {
  ms: number;
  text: string;
}

export interface RunOptions {
  onProgress?: ProgressListener;
  /** Past it the run fails (retryable) and the worker, stuck, is replaced by a new one for the next request. */
  deadline?: WorkerDeadline;
  /** Slices per batch to start with; default the manifest's batchSize. */
  batchSize?: number;
  /** The series' measured image noise, HU (the probe's noiseHu): required by a manifest with input.noiseLevel. */
  noiseHu?: number;
}

/** The candidate classifier's answer: a probability per patch, and where and how it ran. */
export interface ClassifierScores {
  probabilities: Float32Array;
  provider: ExecutionProvider;
  precision: "fp32" | "fp16";
  inferenceMs: number;
}

export class InferenceError extends OperationalError {
  override readonly name = "InferenceError";
}

interface Listeners {
  onProgress?: ProgressListener | undefined;
  onSlices?: SlicesListener | undefined;
}

interface Pending extends Listeners {
  resolve: (reply: WorkerReply) => void;
  reject: (error: Error) => void;
  /**
   * What a listener threw: the run's answer. A listener is called from the worker's message event, where a throw
   * would end the process (a ledger write refused by a full disk did); the worker is let finish its run, so the
   * next request finds it idle, and then the request fails with this.
   */
  listenerError?: Error;
}

/** The reply of the expected type, or the worker's error (or a surprise) as an InferenceError. */
function expectReply<T extends WorkerReply["type"]>(reply: WorkerReply, type: T): Extract<WorkerReply, { type: T }> {
  if (reply.type === "error") throw new InferenceError(reply.message, reply.retryable);
  if (reply.type !== type) throw new InferenceError(`unexpected worker reply ${reply.type} (expected ${type})`, false);
  return reply as Extract<WorkerReply, { type: T }>;
}

export class InferenceService {
  private worker: Worker | undefined;
  private closing = false;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Serialises requests: one model run at a time on the one accelerator. */
  private queue: Promise<unknown> = Promise.resolve();

  /** fp16 variant file per model id, once its sha256 is checked; null = none, or not usable. */
  private readonly fp16Files = new Map<string, string | null>();

  constructor(
    private readonly provider: Provider,
    private readonly cpuThreads: number,
    private readonly precision: Precision = "auto",
  ) {}

  /** The manifest's fp16 variant where the precision setting may use it, checked against its sha256 once. */
  private fp16ModelPath(model: RegisteredModel, providers: ExecutionProvider[]): Promise<string | undefined> {
    const variant = model.manifest.fp16;
    if (!variant) return Promise.resolve(undefined);
    return this.fp16File(`${model.manifest.id}@${model.manifest.version}`, model.manifest.id, variant, model.modelPath, providers);
  }

  /** An fp16 copy beside `besidePath`, where the precision setting may use it, checked against its sha256 once. */
  private async fp16File(
    key: string, modelId: string, variant: { file: string; sha256: string }, besidePath: string, providers: ExecutionProvider[],
  ): Promise<string | undefined> {
    if (this.precision === "fp32") return undefined;
    if (this.precision === "auto" && providers.every((p) => p === "cpu")) return undefined;
    if (!this.fp16Files.has(key)) {
      const file = path.resolve(path.dirname(besidePath), variant.file);
      let usable: string | null = null;
      try {
        const actual = await sha256OfFile(file);
        if (actual === variant.sha256) usable = file;
        else log.warn("fp16 model variant has the wrong sha256; using fp32", { model: modelId, file, actual, expected: variant.sha256 });
      } catch (error) {
        log.warn("fp16 model variant is unreadable; using fp32", { model: modelId, file, error: (error as Error).message });
      }
      this.fp16Files.set(key, usable);
    }
    return this.fp16Files.get(key) ?? undefined;
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(compiledWorkerFile("models/inference-worker.js"));
    worker.on("message", (reply: WorkerReply) => {
      const pending = this.pending.get(reply.requestId);
      if (!pending) return;
      if (reply.type === "progress" || reply.type === "slices") {
        if (pending.listenerError) return;
        try {
          if (reply.type === "progress") pending.onProgress?.(reply.slicesDone, reply.slicesTotal, reply.provider);
          else pending.onSlices?.(reply.first, reply.values);
        } catch (error) {
          pending.listenerError = error instanceof Error ? error : new Error(String(error));
        }
        return;
      }
      this.pending.delete(reply.requestId);
      if (pending.listenerError) pending.reject(pending.listenerError);
      else pending.resolve(reply);
    });
    // A worker replaced after a timeout may still end later: that is no news for the requests of its successor.
    worker.on("error", (error) => {
      if (this.worker === worker) this.failAll(`inference worker crashed: ${error.message}`);
    });
    worker.on("exit", (code) => {
      if (this.worker !== worker) return;
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

  /**
   * The worker did not answer in time (a model stuck in a native call cannot be interrupted from here): its requests
   * fail as retryable, and it is let go: asked to end itself, which it does at its next JavaScript boundary, and
   * unref'd so that it never holds the process open. Not terminated: Worker.terminate() while onnxruntime-node is
   * inside session.run makes the binding throw a C++ Napi::Error when the call returns, and std::terminate takes the
   * whole service down (seen in the hang test under load; onnxruntime-node 1.29, as daintreehq/daintree#12577
   * reports). A model that never returns keeps its thread until the process ends. The next request starts a new
   * worker, which loads the model again.
   */
  private replaceStuckWorker(deadline: WorkerDeadline): void {
    const stuck = this.worker;
    this.worker = undefined;
    this.failAll(`no answer from the inference worker within ${deadline.text}; the worker was replaced`);
    stuck?.postMessage({ type: "retire" } satisfies WorkerRequest);
    stuck?.unref();
  }

  private send(request: RunRequest | WarmupRequest | ClassifyRequest, transfer: ArrayBuffer[], listeners: Listeners = {}, deadline?: WorkerDeadline): Promise<WorkerReply> {
    const job = this.queue.then(
      () =>
        new Promise<WorkerReply>((resolve, reject) => {
          const timer = deadline ? setTimeout(() => this.replaceStuckWorker(deadline), deadline.ms) : undefined;
          const settle = <A>(then: (a: A) => void) => (a: A) => {
            clearTimeout(timer);
            then(a);
          };
          this.pending.set(request.requestId, { resolve: settle(resolve), reject: settle(reject), ...listeners });
          this.ensureWorker().postMessage(request, transfer);
        }),
    );
    this.queue = job.catch(() => undefined);
    return job;
  }

  /** What every request says about the model: which files, which providers in which order, how many CPU threads. */
  private async modelFields(model: RegisteredModel): Promise<ModelFields> {
    const providers = providerOrder(this.provider);
    const fp16ModelPath = await this.fp16ModelPath(model, providers);
    return {
      requestId: this.nextId++,
      manifest: model.manifest,
      modelPath: model.modelPath,
      providers,
      cpuThreads: this.cpuThreads,
      ...(fp16ModelPath ? { fp16ModelPath, fp16OnCpu: this.precision === "fp16" } : {}),
    };
  }

  /**
   * Loads the model (and its candidate classifier) and runs it once on a small input, so the first real series does
   * not pay for it.
   */
  async warmup(model: RegisteredModel): Promise<{ provider: ExecutionProvider; warmupMs: number }> {
    const reply = expectReply(await this.send({ type: "warmup", ...(await this.modelFields(model)) }, []), "warm");
    log.info("model loaded", { model: model.manifest.id, provider: reply.provider, precision: reply.precision ?? "fp32" });
    const classifier = model.manifest.candidateClassifier;
    if (!classifier) return { provider: reply.provider, warmupMs: reply.warmupMs };
    // A two-stage detector's classifier too: loaded (or refused) now, and scored once on an empty patch.
    const started = performance.now();
    await this.classify(model, new Float32Array(classifier.patchVoxels ** 3), 1);
    return { provider: reply.provider, warmupMs: reply.warmupMs + performance.now() - started };
  }

  /**
   * Runs the model on every slice. `volume.hu` goes to the worker: shared memory stays the caller's too (the worker
   * only reads it when streaming), any other buffer is transferred and gone from the caller afterwards.
   * The output goes where `sink` says: streamed to `streamTo` batch by batch, in slice order, while the rest is still
   * being computed (each array is the listener's to keep); or written over the input and handed back as `output`
   * (one float32 volume at the peak).
   */
  run(model: RegisteredModel, volume: VolumeInput, sink: { streamTo: SlicesListener }, options?: RunOptions): Promise<InferenceSummary>;
  run(model: RegisteredModel, volume: VolumeInput, sink: "over-input", options?: RunOptions): Promise<InferenceSummary & { output: Float32Array }>;
  async run(model: RegisteredModel, volume: VolumeInput, sink: OutputSink, options: RunOptions = {}): Promise<InferenceSummary & { output?: Float32Array }> {
    const onSlices = sink === "over-input" ? undefined : sink.streamTo;
    const reply = expectReply(await this.send(
      {
        type: "run",
        ...(await this.modelFields(model)),
        ...(options.batchSize ? { batchSize: options.batchSize } : {}),
        ...(options.noiseHu !== undefined ? { noiseHu: options.noiseHu } : {}),
        output: onSlices ? "stream" : "over-input",
        slices: volume.slices,
        rows: volume.rows,
        columns: volume.columns,
        hu: volume.hu,
      },
      // Voxels in shared memory stay the caller's too; others move to the worker.
      volume.hu.buffer instanceof SharedArrayBuffer ? [] : [volume.hu.buffer as ArrayBuffer],
      { onProgress: options.onProgress, onSlices },
      options.deadline,
    ), "result");
    if (!onSlices && !reply.output) throw new InferenceError("the inference worker sent no output", false);
    const fallbacks = reply.fallbacks ?? [];
    const precision = reply.precision ?? "fp32";
    log.info("inference done", {
      model: model.manifest.id,
      provider: reply.provider,
      precision,
      slices: volume.slices,
      batchSize: reply.batchSize,
      ms: Math.round(reply.inferenceMs),
      output: onSlices ? "stream" : "over-input",
      ...(fallbacks.length > 0 ? { fallbacks } : {}),
    });
    const summary = { provider: reply.provider, precision, batchSize: reply.batchSize, inferenceMs: reply.inferenceMs, fallbacks };
    return reply.output ? { ...summary, output: reply.output } : summary;
  }

  /**
   * A detection model's candidate classifier on `count` patches ([count, 1, P, P, P] network values, transferred to
   * the worker), on the providers the models run on: each patch's probability, in order.
   */
  async classify(model: RegisteredModel, patches: Float32Array, count: number, options: { deadline?: WorkerDeadline } = {}): Promise<ClassifierScores> {
    const classifier = model.manifest.candidateClassifier;
    if (!classifier || !model.classifierPath) throw new InferenceError(`model ${model.manifest.id} has no candidate classifier`, false);
    const providers = providerOrder(this.provider);
    const key = `${model.manifest.id}@${model.manifest.version}:classifier:${model.classifierPath}`;
    const fp16 = classifier.fp16 ? await this.fp16File(key, model.manifest.id, classifier.fp16, model.classifierPath, providers) : undefined;
    const reply = expectReply(await this.send(
      {
        type: "classify",
        requestId: this.nextId++,
        modelId: model.manifest.id,
        modelVersion: model.manifest.version,
        classifier,
        classifierPath: model.classifierPath,
        ...(fp16 ? { fp16ClassifierPath: fp16, fp16OnCpu: this.precision === "fp16" } : {}),
        providers,
        cpuThreads: this.cpuThreads,
        count,
        patches,
      },
      patches.buffer instanceof SharedArrayBuffer ? [] : [patches.buffer as ArrayBuffer],
      {},
      options.deadline,
    ), "scores");
    log.info("candidate classifier done", {
      model: model.manifest.id, provider: reply.provider, precision: reply.precision, candidates: count, ms: Math.round(reply.inferenceMs),
    });
    return { probabilities: reply.probabilities, provider: reply.provider, precision: reply.precision, inferenceMs: reply.inferenceMs };
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.worker?.terminate();
    this.worker = undefined;
  }
}
