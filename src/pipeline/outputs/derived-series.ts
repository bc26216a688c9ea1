/**
 * The output plan of models whose output is a CT image (synthesis, denoise): a derived CT series in the source's
 * study, on its geometry. Infer, write and store overlap: the worker streams the output batch by batch and each slice
 * is encoded and sent while the model computes the next, so the output is never held as a volume and the input leaves
 * with the worker. Kept on the side: the preview pair, the source's middle slice (copied before the input goes) and
 * the output's.
 */
import type { CtVolume } from "../../dicom/ct-volume.js";
import { type DerivedCtWriter, derivedCtWriter } from "../../dicom/derived-ct.js";
import type { DerivedSeriesIdentity } from "../../dicom/derived-ct-modules.js";
import { deterministicUid } from "../../dicom/uid.js";
import { nextTurn } from "../../event-loop.js";
import type { RegisteredModel } from "../../models/registry.js";
import { asStageError, Stage } from "../../stage-error.js";
import { SOFTWARE_NAME, SOFTWARE_VERSION } from "../../version.js";
import { OutputSliceQueue, type OutputSlices } from "../output-slices.js";
import { type PreviewPair, previewSliceIndex } from "../stages/preview.js";
import { storeOutputInstances } from "../stages/store-instances.js";
import type { OutputPlan, PlanIo, PlanOutcome, PlanTarget } from "./output-plan.js";
import { inferenceFailure, outputSeriesNumber, outputSeriesUid } from "./output-plan.js";

export function derivedSeriesPlan(target: PlanTarget): OutputPlan {
  const seriesInstanceUID = outputSeriesUid(target.job, "series");
  return {
    seriesUids: [seriesInstanceUID],
    completion: (slices) => ({ seriesUid: seriesInstanceUID, instances: slices }),
    async produce(volume, io) {
      const outcome = await streamDerivedSeries(target.model, volume, derivedSeriesIdentity(target, volume), io);
      return { ...outcome, summary: `derived series ${seriesInstanceUID} stored` };
    },
  };
}

/** Who the derived series is: UIDs, number and descriptions, all from the job (source, pipeline, model, run). */
export function derivedSeriesIdentity({ job, pipeline, pipelineOrdinal, model }: PlanTarget, volume: CtVolume): DerivedSeriesIdentity {
  const { manifest } = model;
  const seriesInstanceUID = outputSeriesUid(job, "series");
  return {
    seriesInstanceUID,
    sopInstanceUID: (slice) => deterministicUid(SOFTWARE_NAME, "instance", seriesInstanceUID, slice),
    seriesNumber: outputSeriesNumber(volume, pipelineOrdinal),
    // LO: 64 characters at most.
    seriesDescription: `${pipeline.outputLabel} AI-generated NOT FOR DIAGNOSTIC USE`.slice(0, 64),
    derivationDescription:
      `${manifest.task} by ${manifest.name} (model ${manifest.id} ${manifest.version}) in ${SOFTWARE_NAME} ` +
      `${SOFTWARE_VERSION}, pipeline ${pipeline.id}, run ${job.run}, from series ${job.sourceSeriesUid}. ` +
      "AI-generated image, not for diagnostic use.",
    model: { id: manifest.id, version: manifest.version, name: manifest.name },
    software: { manufacturer: SOFTWARE_NAME, version: SOFTWARE_VERSION },
    contentDate: new Date(),
  };
}

/**
 * The derived instances of the output slices as they come, one Part-10 file a slice; a turn of the event loop
 * between encodes (~2 ms each) keeps the API and the change feed answering. The writer's refusals are write errors.
 */
export async function* derivedCtInstances(writer: DerivedCtWriter, plane: number, output: AsyncIterable<OutputSlices>): AsyncGenerator<Uint8Array> {
  for await (const { first, values } of output) {
    for (let i = 0; i < values.length / plane; i += 1) {
      try {
        yield writer.instance(first + i, values.subarray(i * plane, (i + 1) * plane));
      } catch (error) {
        throw asStageError(Stage.Write, error);
      }
      await nextTurn();
    }
  }
}

/** Runs the model with its output streamed into the store; both settle before the outcome is known. */
export async function streamDerivedSeries(
  model: RegisteredModel,
  volume: CtVolume,
  identity: DerivedSeriesIdentity,
  io: PlanIo,
): Promise<Omit<PlanOutcome, "summary">> {
  let writer: DerivedCtWriter;
  try {
    writer = derivedCtWriter(volume, identity);
  } catch (error) {
    throw asStageError(Stage.Write, error);
  }
  const plane = volume.rows * volume.columns;
  const middle = previewSliceIndex(volume.slices);
  const before = volume.hu.slice(middle * plane, (middle + 1) * plane);
  let after: Float32Array | undefined;
  let inferenceDone = 0;

  const output = new OutputSliceQueue();
  const inferring = io.inference.run(model, volume, {
    streamTo: (first, values) => {
      const count = values.length / plane;
      if (middle >= first && middle < first + count) after = values.slice((middle - first) * plane, (middle - first + 1) * plane);
      output.push({ first, values });
    },
  }, { onProgress: io.onProgress }).then(
    (summary) => {
      inferenceDone = performance.now();
      output.end();
      io.onInferenceDone(summary);
      return summary;
    },
    (error: unknown) => {
      const failure = inferenceFailure(model, error);
      output.fail(failure);
      throw failure;
    },
  );
  const storing = storeOutputInstances(io.endpoint, volume.studyInstanceUID, derivedCtInstances(writer, plane, output), io.store);
  // The model's failure is the cause when there is one.
  const [inferred, stored] = await Promise.allSettled([inferring, storing]);
  if (inferred.status === "rejected") throw inferred.reason;
  if (stored.status === "rejected") throw stored.reason;
  return {
    stored: stored.value,
    storeTailMs: performance.now() - inferenceDone,
    ...(after ? { preview: { rows: volume.rows, columns: volume.columns, before, after } satisfies PreviewPair } : {}),
  };
}
