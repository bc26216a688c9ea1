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
}

export type WorkerRequest = RunRequest | WarmupRequest;

export type WorkerReply =
  | { type: "progress"; requestId: number; slicesDone: number; slicesTotal: number; provider: ExecutionProvider }
  | {
    type: "result";
    requestId: number;
    provider: ExecutionProvider;
    batchSize: number;
    inferenceMs: number;
    /** The input, handed back. */
    hu: Float32Array;
    /** HU image or probability map, same shape as the input. */
    output: Float32Array;
  }
  | { type: "warm"; requestId: number; provider: ExecutionProvider; warmupMs: number }
  | { type: "error"; requestId: number; message: string; retryable: boolean };
