/** Stage infer: the model over every slice of the volume, in the inference worker. */
import type { CtVolume } from "../../dicom/ct-volume.js";
import { InferenceError, type InferenceResult, type InferenceService } from "../../models/inference.js";
import type { RegisteredModel } from "../../models/registry.js";
import { Stage, StageError } from "../stage-error.js";

export async function inferVolume(
  inference: InferenceService,
  model: RegisteredModel,
  volume: CtVolume,
  onProgress: (done: number, total: number, provider: string) => void,
): Promise<InferenceResult> {
  try {
    const result = await inference.run(model, volume, onProgress);
    volume.hu = result.hu; // the worker hands the (transferred) input back
    return result;
  } catch (error) {
    const retryable = error instanceof InferenceError ? error.retryable : false;
    throw new StageError(Stage.Infer, `model ${model.manifest.id}: ${(error as Error).message}`, retryable, { cause: error });
  }
}
