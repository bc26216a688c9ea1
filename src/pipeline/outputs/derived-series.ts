/**
 * The output plan of models whose output is a CT image (synthesis, denoise): a derived CT series in the source's
 * study, on its geometry. The worker streams the output batch by batch; each slice is measured for the output checks
 * and encoded while the model computes the next, and held on disk (held-instances.ts: Part-10 bytes, about half a
 * float volume) until the model is done. Then the checks decide: passed, the series is stored; failed, nothing is
 * stored and the job is rejected with the figures, unless a person forced the run, and then the series says so. The input stays in shared memory for the
 * measures; the preview pair (the middle slice before and after) is kept on the side.
 */
import type { CtVolume } from "../../dicom/ct-volume.js";
import { type DerivedCtWriter, derivedCtSliceHu, derivedCtWriter } from "../../dicom/derived-ct.js";
import type { DerivedSeriesIdentity } from "../../dicom/derived-ct-modules.js";
import { SopClass } from "../../dicom/part10.js";
import { deterministicUid } from "../../dicom/uid.js";
import { nextTurn } from "../../event-loop.js";
import { OutputMeasures } from "../../measure/output-measures.js";
import type { RegisteredModel } from "../../models/registry.js";
import { noiseLevelValue } from "../../models/slice-batches.js";
import { asStageError, Stage, StageError } from "../../stage-error.js";
import { SOFTWARE_NAME, SOFTWARE_VERSION } from "../../version.js";
import { OutputSliceQueue, type OutputSlices } from "../output-slices.js";
import { type PreviewPair, previewSliceIndex } from "../stages/preview.js";
import { HeldInstances } from "./held-instances.js";
import { storeOutputInstances } from "../stages/store-instances.js";
import type { OutputPlan, PlanIo, PlanOutcome, PlanTarget } from "./output-plan.js";
import { failedChecks, inferenceFailure, outputSeriesNumber, outputSeriesUid, overrideStatement } from "./output-plan.js";

export function derivedSeriesPlan(target: PlanTarget): OutputPlan {
  const seriesInstanceUID = outputSeriesUid(target.job, "series");
  const series = { kind: "derived-ct", seriesInstanceUID, sopClassUID: SopClass.CtImage } as const;
  return {
    seriesUids: [seriesInstanceUID],
    outputSeries: [series],
    completion: (slices) => ({ seriesUid: seriesInstanceUID, instances: slices }),
    async produce(volume, io) {
      const outcome = await deriveSeries(target.model, volume, derivedSeriesIdentity(target, volume), io);
      const summary = outcome.rejected ? "output rejected by its checks; nothing stored" : `derived series ${seriesInstanceUID} stored`;
      return { ...outcome, summary, outputs: outcome.rejected ? [] : [{ ...series, instances: outcome.stored }] };
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
    model: { id: manifest.id, version: manifest.version, name: manifest.name, sha256: manifest.sha256 },
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

function writerFor(volume: CtVolume, identity: DerivedSeriesIdentity): DerivedCtWriter {
  try {
    return derivedCtWriter(volume, identity);
  } catch (error) {
    throw asStageError(Stage.Write, error);
  }
}

/**
 * Runs the model, measures and encodes its output as it streams in, then stores it if the checks pass (or the run
 * was forced). Both the model and the encoding settle before the outcome is known.
 */
export async function deriveSeries(
  model: RegisteredModel,
  volume: CtVolume,
  identity: DerivedSeriesIdentity,
  io: PlanIo,
): Promise<Omit<PlanOutcome, "summary" | "outputs" | "findings">> {
  const writer = writerFor(volume, identity);
  const plane = volume.rows * volume.columns;
  const middle = previewSliceIndex(volume.slices);
  const before = volume.hu.slice(middle * plane, (middle + 1) * plane);
  let after: Float32Array | undefined;
  const measures = new OutputMeasures(volume, io.probed, model.manifest.outputChecks);
  // Opened before the model starts: a spool that cannot be written fails the job before any inference.
  const held = await HeldInstances.open(io.spoolDir, identity.seriesInstanceUID);

  const output = new OutputSliceQueue();
  const inferring = io.inference.run(model, volume, {
    streamTo: (first, values) => {
      measures.addSlices(first, values);
      const count = values.length / plane;
      if (middle >= first && middle < first + count) after = values.slice((middle - first) * plane, (middle - first + 1) * plane);
      output.push({ first, values });
    },
  }, { onProgress: io.onProgress, deadline: io.inferDeadline, ...noiseInput(model, io) }).then(
    (summary) => {
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
  try {
    const encoding = (async () => {
      for await (const instance of derivedCtInstances(writer, plane, output)) await held.add(instance);
    })();
    // The model's failure is the cause when there is one.
    const [inferred, encoded] = await Promise.allSettled([inferring, encoding]);
    if (inferred.status === "rejected") throw inferred.reason;
    if (encoded.status === "rejected") throw encoded.reason;
    const inferenceDone = performance.now();
    const preview = after ? { preview: { rows: volume.rows, columns: volume.columns, before, after } satisfies PreviewPair } : {};

    const checks = measures.verdicts();
    const failed = failedChecks(checks);
    if (failed.length > 0 && !io.overridden) return { stored: 0, storeTailMs: 0, checks, rejected: true, ...preview };
    const overridden = [...(io.overridden ?? []), ...failed];
    const instances = overridden.length > 0 ? reencoded(volume, identity, overridden, held.take()) : held.take();
    const stored = await storeOutputInstances(io.endpoint, volume.studyInstanceUID, instances, io.store);
    return { stored, storeTailMs: performance.now() - inferenceDone, checks, rejected: false, ...preview };
  } finally {
    await held.discard();
  }
}

/** The held instances written again by a writer whose series says what was overridden (forced runs only). */
async function* reencoded(
  volume: CtVolume,
  identity: DerivedSeriesIdentity,
  overridden: string[],
  held: AsyncIterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  const statement = overrideStatement(overridden);
  const writer = writerFor(volume, { ...identity, derivationDescription: `${identity.derivationDescription} ${statement}`, override: statement });
  const plane = volume.rows * volume.columns;
  let k = 0;
  for await (const instance of held) {
    yield writer.instance(k, derivedCtSliceHu(instance, plane));
    k += 1;
    await nextTurn();
  }
}

/**
 * The series' measured noise for a model with a noise-level input (FFDNet's noise map), checked before the model
 * starts: without one the job fails here with the reason (a forced job; intended use skips such a series), never a
 * guessed level. Models without that input get nothing.
 */
export function noiseInput(model: RegisteredModel, io: Pick<PlanIo, "probed">): { noiseHu?: number } {
  if (!model.manifest.input.noiseLevel) return {};
  const noiseHu = io.probed.probe.noiseHu;
  try {
    noiseLevelValue(model.manifest, noiseHu);
  } catch (error) {
    throw new StageError(Stage.Infer, (error as Error).message, false);
  }
  return { noiseHu: noiseHu! };
}
