/** Messages between the main thread and the inference worker. Volumes travel as transferred buffers, not copies. */
import type { ModelManifest } from "./manifest.js";

export type ExecutionProvider = "cuda" | "webgpu" | "cpu";

export interface RunRequest {
  type: "run";
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
  /** Slices per batch to start with; default the manifest's batchSize. */
  batchSize?: number;
  /** Overwrite `hu` with the output and hand back one buffer (saves a float32 volume); `result.hu` is then absent. */
  inPlace?: boolean;
  /**
   * Send the output as "slices" messages, batch by batch, as it is computed, and keep none of it; the input is
   * dropped at the end, not handed back: the result then carries neither `hu` nor `output`.
   */
  streamOutput?: boolean;
  slices: number;
  rows: number;
  columns: number;
  /** HU, slice-major; transferred to the worker and handed back with the result. */
  hu: Float32Array;
}

export interface WarmupRequest {
  type: "warmup";
  requestId: number;
  manifest: ModelManifest;
  modelPath: string;
  providers: ExecutionProvider[];
  cpuThreads: number;
  fp16ModelPath?: string;
  fp16OnCpu?: boolean;
}

export type WorkerRequest = RunRequest | WarmupRequest;

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
    /** The input, handed back (absent when the request ran in place: `output` is then the same memory). */
    hu?: Float32Array;
    /** Which file ran: the fp32 model or its fp16 variant. */
    precision?: "fp32" | "fp16";
    /** Out-of-memory fallbacks taken, in order (smaller batch, then CPU). */
    fallbacks?: string[];
    /** HU image or probability map, same shape as the input; absent when it was streamed. */
    output?: Float32Array;
  }
  | { type: "warm"; requestId: number; provider: ExecutionProvider; warmupMs: number; precision?: "fp32" | "fp16" }
  | { type: "error"; requestId: number; message: string; retryable: boolean };
