/**
 * Who a derived series is: its UIDs, number and descriptions, all computed from the job (source series, pipeline,
 * model version, run), so that a second store of the same run lands on the same instances.
 */
import type { DerivedSeriesIdentity } from "../dicom/derived-ct.js";
import { deterministicUid } from "../dicom/uid.js";
import type { Job } from "../jobs/ledger.js";
import type { ModelManifest } from "../models/manifest.js";
import { SOFTWARE_NAME, SOFTWARE_VERSION } from "../version.js";
import type { PipelineDefinition } from "./pipelines.js";

export function derivedSeriesUid(job: Pick<Job, "sourceSeriesUid" | "pipeline" | "modelVersion" | "run">): string {
  return deterministicUid(SOFTWARE_NAME, "series", job.sourceSeriesUid, job.pipeline, job.modelVersion, job.run);
}

/**
 * Series numbers above any scanner's: 100000 per pipeline position plus the source's number (mod 100000), so a
 * viewer lists a derived series right after its source's family.
 */
export function derivedSeriesNumber(sourceSeriesNumber: number | undefined, pipelineOrdinal: number): number {
  return 100_000 * (pipelineOrdinal + 1) + ((sourceSeriesNumber ?? 0) % 100_000);
}

export function derivedSeriesIdentity(
  job: Job,
  pipeline: PipelineDefinition,
  pipelineOrdinal: number,
  manifest: ModelManifest,
  sourceSeriesNumber: number | undefined,
): DerivedSeriesIdentity {
  const seriesInstanceUID = derivedSeriesUid(job);
  return {
    seriesInstanceUID,
    sopInstanceUID: (slice) => deterministicUid(SOFTWARE_NAME, "instance", seriesInstanceUID, slice),
    seriesNumber: derivedSeriesNumber(sourceSeriesNumber, pipelineOrdinal),
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
