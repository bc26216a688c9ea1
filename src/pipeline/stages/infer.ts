/**
 * Stage infer, whole volume out: the model over every slice, in the inference worker, for models whose output is
 * read as a volume (detection's probability map). Image outputs stream instead: see derive-ct-series.ts.
 */
import type { CtVolume } from "../../dicom/ct-volume.js";
import { InferenceError, type InferenceResult, type InferenceService, type RunOptions } from "../../models/inference.js";
import type { RegisteredModel } from "../../models/registry.js";
import { Stage, StageError } from "../stage-error.js";

export async function inferVolume(
  inference: InferenceService,
  model: RegisteredModel,
  volume: CtVolume,
  onProgress: (done: number, total: number, provider: string) => void,
  options: RunOptions = {},
): Promise<InferenceResult> {
  try {
    const result = await inference.run(model, volume, onProgress, options);
    volume.hu = result.hu; // the worker hands the (transferred) input back
    return result;
  } catch (error) {
    const retryable = error instanceof InferenceError ? error.retryable : false;
    throw new StageError(Stage.Infer, `model ${model.manifest.id}: ${(error as Error).message}`, retryable, { cause: error });
  }
}
