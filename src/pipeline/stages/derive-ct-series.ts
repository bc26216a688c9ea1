/**
 * Stages infer + write + store for models whose output is a CT image (synthesis, denoise), overlapped: the worker
 * streams the output batch by batch and the store encodes and sends each slice while the model computes the next.
 * The output is never held as a volume, and the input leaves with the worker. What is kept on the side is the
 * preview pair: the source's middle slice (copied before the input goes) and the output's.
 */
import type { CtVolume } from "../../dicom/ct-volume.js";
import type { DerivedSeriesIdentity } from "../../dicom/derived-ct.js";
import type { DicomwebEndpoint } from "../../dicomweb/endpoint.js";
import { InferenceError, type InferenceService, type InferenceSummary, type ProgressListener } from "../../models/inference.js";
import type { RegisteredModel } from "../../models/registry.js";
import { OutputSliceQueue } from "../output-slices.js";
import { Stage, StageError } from "../stage-error.js";
import { type PreviewPair, previewSliceIndex } from "./preview.js";
import { type StoreOptions, storeDerivedCtSeries } from "./store-derived-ct.js";

export interface DerivedCtRun {
  inference: InferenceSummary;
  stored: number;
  preview: PreviewPair | undefined;
  /** Milliseconds from the start: the model's last slice out, the store's last answer in. */
  inferenceDoneMs: number;
  storeDoneMs: number;
}

export interface DerivedCtCallbacks {
  onProgress?: ProgressListener;
  /** The model is done; what remains is the store's tail. */
  onInferenceDone?: (summary: InferenceSummary) => void;
  onStored?: (instances: number) => void;
}

export async function deriveCtSeries(
  inference: InferenceService,
  model: RegisteredModel,
  volume: CtVolume,
  endpoint: DicomwebEndpoint,
  identity: DerivedSeriesIdentity,
  storeOptions: StoreOptions,
  callbacks: DerivedCtCallbacks = {},
): Promise<DerivedCtRun> {
  const started = performance.now();
  const plane = volume.rows * volume.columns;
  const middle = previewSliceIndex(volume.slices);
  const before = volume.hu.slice(middle * plane, (middle + 1) * plane);
  let after: Float32Array | undefined;
  let inferenceDoneMs = 0;

  const output = new OutputSliceQueue();
  const inferring = inference
    .runStreaming(model, volume, (first, values) => {
      const count = values.length / plane;
      if (middle >= first && middle < first + count) after = values.slice((middle - first) * plane, (middle - first + 1) * plane);
      output.push({ first, values });
    }, callbacks.onProgress)
    .then(
      (summary) => {
        inferenceDoneMs = performance.now() - started;
        output.end();
        callbacks.onInferenceDone?.(summary);
        return summary;
      },
      (error: unknown) => {
        const retryable = error instanceof InferenceError ? error.retryable : false;
        const failure = new StageError(Stage.Infer, `model ${model.manifest.id}: ${(error as Error).message}`, retryable, { cause: error });
        output.fail(failure);
        throw failure;
      },
    );
  const storing = storeDerivedCtSeries(endpoint, volume, output, identity, storeOptions, callbacks.onStored ?? (() => undefined));
  // Both settle before the outcome is known: the model's failure is the cause when there is one.
  const [inferred, stored] = await Promise.allSettled([inferring, storing]);
  if (inferred.status === "rejected") throw inferred.reason;
  if (stored.status === "rejected") throw stored.reason;
  return {
    inference: inferred.value,
    stored: stored.value,
    preview: after ? { rows: volume.rows, columns: volume.columns, before, after } : undefined,
    inferenceDoneMs,
    storeDoneMs: performance.now() - started,
  };
}
