/** Messages between the main thread and the inference worker. Volumes travel as transferred buffers, not copies. */
import type { CandidateClassifier, ModelManifest } from "./manifest.js";

export type ExecutionProvider = "cuda" | "webgpu" | "cpu";

/** What every request says about the model: which files, which providers in which order, how many CPU threads. */
export interface ModelFields {
  requestId: number;
  manifest: ModelManifest;
  modelPath: string;
  /** Providers to try in order. */
  providers: ExecutionProvider[];
  cpuThreads: number;
  /** The manifest's fp16 variant (sha256 checked), tried first on GPU providers; absent = fp32 only. */
  fp16ModelPath?: string;
  /** Try the fp16 variant on the CPU provider too (precision "fp16"). */
  fp16OnCpu?: boolean;
}

export interface RunRequest extends ModelFields {
  type: "run";
  /** Slices per batch to start with; default the manifest's batchSize. */
  batchSize?: number;
  /** The series' measured image noise, HU: the noise-level channel of a manifest with input.noiseLevel. */
  noiseHu?: number;
  /**
   * "stream": the output goes back as "slices" messages, batch by batch, as it is computed, and the worker keeps
   * none of it (the input is dropped at the end). "over-input": the output is written over `hu`, which comes back
   * with the result.
   */
  output: "stream" | "over-input";
  slices: number;
  rows: number;
  columns: number;
  /** HU, slice-major; transferred to the worker. */
  hu: Float32Array;
}

export interface WarmupRequest extends ModelFields {
  type: "warmup";
}

/**
 * A worker the service has replaced (it did not answer in time) is asked to end itself: it reads this only between
 * native calls, so it never ends inside one (see InferenceService.replaceStuckWorker).
 */
export interface RetireRequest {
  type: "retire";
}

/** A detection model's candidate classifier on the patches of its candidates (candidate-patches.ts). */
export interface ClassifyRequest {
  type: "classify";
  requestId: number;
  modelId: string;
  modelVersion: string;
  classifier: CandidateClassifier;
  /** The classifier's ONNX file (sha256 checked) and its fp16 copy where one is usable. */
  classifierPath: string;
  fp16ClassifierPath?: string;
  fp16OnCpu?: boolean;
  providers: ExecutionProvider[];
  cpuThreads: number;
  count: number;
  /** [count, 1, P, P, P] network values; transferred. */
  patches: Float32Array;
}

export type WorkerRequest = RunRequest | WarmupRequest | ClassifyRequest | RetireRequest;

export type WorkerReply =
  | { type: "progress"; requestId: number; slicesDone: number; slicesTotal: number; provider: ExecutionProvider }
  /** Streamed output: slices [first, first + values.length / (rows x columns)), transferred. */
  | { type: "slices"; requestId: number; first: number; values: Float32Array }
  | {
    type: "result";
    requestId: number;
    provider: ExecutionProvider;
    batchSize: number;
    inferenceMs: number;
    /** Which file ran: the fp32 model or its fp16 variant. */
    precision?: "fp32" | "fp16";
    /** Out-of-memory fallbacks taken, in order (smaller batch, then CPU). */
    fallbacks?: string[];
    /** "over-input": the input's memory, now the output (HU image or probability map); absent when streamed. */
    output?: Float32Array;
  }
  | { type: "warm"; requestId: number; provider: ExecutionProvider; warmupMs: number; precision?: "fp32" | "fp16" }
  /** The classifier's probability of each patch, in order; transferred. */
  | { type: "scores"; requestId: number; provider: ExecutionProvider; precision: "fp32" | "fp16"; inferenceMs: number; probabilities: Float32Array }
  | { type: "error"; requestId: number; message: string; retryable: boolean };
