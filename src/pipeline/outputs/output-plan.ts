/**
 * What a job writes, as a plan chosen once from the model's manifest by what its output is: an HU image becomes a
 * derived CT series (derived-series.ts), a probability map becomes findings, a TID 1500 SR with its SEG
 * (findings.ts). A plan knows its output UIDs (deterministic per job run: a second store of the same run lands on
 * the same instances), which series it stores last and how many instances that series has once the output is whole
 * (so a retry finds a finished output and stores nothing), and how it consumes the model's output. Every plan stores
 * through one routine with one final-status rule (../stages/store-instances.ts). The runner calls plans, never tasks.
 */
import type { CtVolume } from "../../dicom/ct-volume.js";
import { deterministicUid } from "../../dicom/uid.js";
import type { DicomwebEndpoint } from "../../dicomweb/endpoint.js";
import type { Job } from "../../jobs/job-records.js";
import type { InferenceService, InferenceSummary, ProgressListener, WorkerDeadline } from "../../models/inference.js";
import type { RegisteredModel } from "../../models/registry.js";
import { asStageError, Stage, StageError } from "../../stage-error.js";
import { SOFTWARE_NAME } from "../../version.js";
import type { PipelineDefinition } from "../pipelines.js";
import type { CheckVerdict } from "../../measure/output-measures.js";
import type { ResultNotification, StoredSeries } from "../../notify/result-notification.js";
import type { ProbedVolume } from "../../measure/anatomy-probe.js";
import type { PreviewPair } from "../stages/preview.js";
import type { StoreOptions } from "../stages/store-instances.js";

/** The job a plan is for, with the pipeline and the model it runs (checked to be the job's version). */
export interface PlanTarget {
  job: Job;
  pipeline: PipelineDefinition;
  /** The pipeline's position in pipelines.json: its outputs' series numbers follow from it. */
  pipelineOrdinal: number;
  model: RegisteredModel;
}

/** What a plan needs to run the model and store: and whom it tells how far it got. */
export interface PlanIo {
  inference: InferenceService;
  /** The infer stage's timeout for this volume (../stage-deadline.ts): past it the worker is replaced. */
  inferDeadline?: WorkerDeadline | undefined;
  endpoint: DicomwebEndpoint;
  store: StoreOptions;
  /** Where a derived series waits on disk for its checks (held-instances.ts): `<dataDir>/spool`. */
  spoolDir: string;
  /** What the anatomy probe measured in the volume: the output checks measure with its masks. */
  probed: ProbedVolume;
  /**
   * What a person's "force" overrode, stated in the output's DICOM: the intended-use reasons, and (added by the plan)
   * the failed checks. Undefined when the job is not forced: then a failed check stores nothing.
   */
  overridden: string[] | undefined;
  onProgress: ProgressListener;
  /** The model is done; what remains is checking, writing and storing. */
  onInferenceDone(summary: InferenceSummary): void;
}

export interface PlanOutcome {
  /** One line for the job's timeline, e.g. "derived series 2.25.1 stored" or "2 finding(s); SR series 2.25.2". */
  summary: string;
  /** Instances Orthanc confirmed. */
  stored: number;
  /** Milliseconds from the model's last slice to the last store answer: what the store added after inference. */
  storeTailMs: number;
  /** The before/after pair of the middle slice, when the output is an image. */
  preview?: PreviewPair;
  /** The output checks as measured; when one failed and the job was not forced, nothing was stored. */
  checks: CheckVerdict[];
  rejected: boolean;
  /** The series stored (none when rejected), as a result notification names them. */
  outputs: StoredSeries[];
  /** Detection plans: what was found, as a result notification summarises it. */
  findings?: NonNullable<ResultNotification["findings"]>;
}

export interface OutputPlan {
  /** Every series the plan writes, the job's main output first. */
  readonly seriesUids: readonly string[];
  /** The same series with their kind and SOP class (a findings plan writes its SEG only when there are findings). */
  readonly outputSeries: readonly StoredSeries[];
  /** The series stored last, and its instance count once the output is whole, for a source of `slices` slices. */
  completion(slices: number): { seriesUid: string; instances: number };
  /** The model's output is written over the input volume (which then must not serve another job). */
  readonly overwritesInput?: boolean;
  /** Infer, write and store. Throws StageError (infer, write or store). */
  produce(volume: CtVolume, io: PlanIo): Promise<PlanOutcome>;
  /**
   * Detection plans: the findings an earlier attempt's whole output tells of, read back from the stored objects (a
   * job that finds its output already stored tells its receivers the same findings as the attempt that stored it).
   */
  storedFindings?(endpoint: DicomwebEndpoint, studyUid: string, signal: AbortSignal): Promise<PlanOutcome["findings"]>;
}

/** A series UID of the job's current run: one per kind of output, the same on every attempt of the run. */
export function outputSeriesUid(job: Pick<Job, "sourceSeriesUid" | "pipeline" | "modelVersion" | "run">, kind: "series" | "sr-series" | "seg-series"): string {
  return deterministicUid(SOFTWARE_NAME, kind, job.sourceSeriesUid, job.pipeline, job.modelVersion, job.run);
}

/**
 * Series numbers above any scanner's: 100000 per pipeline position plus the source's number (mod 100000), so a
 * viewer lists a derived series right after its source's family.
 */
export function outputSeriesNumber(volume: CtVolume, pipelineOrdinal: number): number {
  const source = Number(volume.sliceHeaders[0]?.SeriesNumber);
  return 100_000 * (pipelineOrdinal + 1) + ((Number.isFinite(source) ? source : 0) % 100_000);
}

/** The model's failure as the infer stage's, naming the model. */
export function inferenceFailure(model: RegisteredModel, error: unknown): StageError {
  const failure = asStageError(Stage.Infer, error);
  return new StageError(Stage.Infer, `model ${model.manifest.id}: ${failure.message}`, failure.retryable, { cause: error });
}

/** The checks that failed, in words, or an empty list. */
export function failedChecks(checks: readonly CheckVerdict[]): string[] {
  return checks.filter((c) => !c.passed).map((c) => c.text);
}

/** The sentence every overridden output carries in its DICOM (Derivation Description, Image Comments, the SR). */
export function overrideStatement(overridden: readonly string[]): string {
  return `Run on request past ct-enhance's safeguards (force): ${overridden.join("; ")}.`;
}
