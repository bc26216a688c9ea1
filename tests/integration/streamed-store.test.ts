/**
 * The derived series is measured and encoded while the model still runs, and stored once its checks pass. Against a
 * real Orthanc, with the runner in this process and a stand-in for the inference worker (an identity "model" that
 * streams its output like the real worker):
 * - a model that fails half-way leaves nothing behind, and the job waits for its retry with the model's reason;
 * - the retry streams every slice, in batches, into a complete series whose pixels are the source's (the identity
 *   model), slice for slice, so the streamed order and positions are right;
 * - a defect in the model stage fails the job there, for good.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import type { CtVolume } from "../../src/dicom/ct-volume.js";
import { assembleVolume } from "../../src/dicom/volume.js";
import { retrieveSeries } from "../../src/dicomweb/wado-rs.js";
import { type Job, JobState } from "../../src/jobs/job-records.js";
import { InferenceError, type InferenceService, type InferenceSummary, type OutputSink } from "../../src/models/inference.js";
import { outputSeriesUid } from "../../src/pipeline/outputs/output-plan.js";
import { type PipelineContext, runJob } from "../../src/pipeline/runner.js";
import { openContext } from "../../src/service/service.js";
import { requireCtData } from "../helpers/ct-data.js";
import { contiguousSubset, type SeriesSubset } from "../helpers/ct-subset.js";
import { OPERATOR_TEST_PIPELINES } from "../helpers/ct-service.js";
import { startOrthanc, type TestOrthanc } from "../helpers/orthanc.js";
import { requireOrthanc } from "../helpers/system-tools.js";

const ready = requireCtData("lidc-idri-0002-ncct") && requireOrthanc();
const SLICES = 24;

/** Streams the input back as the output, `batch` slices a message; fails after `failAfter` slices if given. */
function identityModel(batch: number, failAfter?: number, failure: Error = new InferenceError("cuda out of memory at batch 1 (stand-in)", true)): InferenceService {
  const run = async (
    _model: unknown,
    volume: { hu: Float32Array; slices: number; rows: number; columns: number },
    sink: OutputSink,
  ): Promise<InferenceSummary> => {
    if (sink === "over-input") throw new Error("the derived-series plan streams its output");
    const plane = volume.rows * volume.columns;
    for (let first = 0; first < volume.slices; first += batch) {
      if (failAfter !== undefined && first >= failAfter) {
        await new Promise((resolve) => setTimeout(resolve, 500)); // the store's requests are under way
        throw failure;
      }
      const count = Math.min(batch, volume.slices - first);
      sink.streamTo(first, volume.hu.slice(first * plane, (first + count) * plane));
      await new Promise((resolve) => setImmediate(resolve));
    }
    return { provider: "cpu", precision: "fp32", batchSize: batch, inferenceMs: 1, fallbacks: [] };
  };
  return { run } as unknown as InferenceService;
}

describe.runIf(ready)("derived series measured while the model runs, stored once checked (real Orthanc, stand-in model)", () => {
  let orthanc: TestOrthanc;
  let subset: SeriesSubset;
  let dataDir: string;
  let ctx: PipelineContext;
  let job: Job;
  let source: CtVolume;

  const endpoint = () => ctx.orthanc.dicomweb();
  const derivedSeriesId = async () => ctx.orthanc.seriesIdOf(outputSeriesUid(ctx.ledger.jobs.get(job.id)!, "series"));

  beforeAll(async () => {
    subset = contiguousSubset("lidc-idri-0002-ncct", SLICES);
    orthanc = await startOrthanc();
    const [seriesId] = await orthanc.uploadFolder(subset.folder);
    dataDir = mkdtempSync(path.join(tmpdir(), "ct-enhance-streamed-"));
    ctx = await openContext(loadConfig(undefined, {
      CT_ENHANCE_ORTHANC_URL: orthanc.url,
      CT_ENHANCE_ORTHANC_USERNAME: orthanc.username,
      CT_ENHANCE_ORTHANC_PASSWORD: orthanc.password,
      CT_ENHANCE_DATA_DIR: dataDir,
      ...OPERATOR_TEST_PIPELINES,
    }));
    const series = await ctx.orthanc.series(seriesId!);
    const study = await ctx.orthanc.study(series!.ParentStudy);
    const pipeline = ctx.pipelines[0]!;
    job = ctx.ledger.jobs.create({
      sourceOrthancId: seriesId!,
      sourceSeriesUid: series!.MainDicomTags.SeriesInstanceUID!,
      studyUid: study!.MainDicomTags.StudyInstanceUID!,
      pipeline: pipeline.id,
      modelId: pipeline.model,
      modelVersion: ctx.models.get(pipeline.model).manifest.version,
    }).job;
    source = await assembleVolume(retrieveSeries(endpoint(), job.studyUid, job.sourceSeriesUid));
  }, 120_000);

  afterAll(async () => {
    ctx?.ledger.close();
    await orthanc?.stop();
    subset?.remove();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it("stores nothing of a model that fails half-way, and waits for the retry with the model's reason", async () => {
    // 16 slices are measured and encoded before the stand-in fails; none of them may reach Orthanc.
    ctx.inference = identityModel(8, 16);
    const failed = await runJob(ctx, job);
    expect(failed).toMatchObject({ state: JobState.RetryWait, errorStage: "infer", errorRetryable: true });
    expect(failed.errorMessage).toMatch(/cuda out of memory at batch 1 \(stand-in\)/);
    expect(await derivedSeriesId()).toBeUndefined();
  }, 120_000);

  it("stores every slice of a run that completes, each on its source slice", async () => {
    ctx.inference = identityModel(5);
    const done = await runJob(ctx, ctx.ledger.jobs.get(job.id)!);
    expect(done.state, done.errorMessage ?? "").toBe(JobState.Done);
    const derived = await assembleVolume(retrieveSeries(endpoint(), job.studyUid, outputSeriesUid(done, "series")));
    expect(derived.slices).toBe(SLICES);
    expect(derived.imagePositionPatient).toEqual(source.imagePositionPatient);
    let worst = 0;
    for (let i = 0; i < source.hu.length; i += 1) {
      const expected = Math.min(3071, Math.max(-1024, source.hu[i]!)); // the derived CT's stored range
      worst = Math.max(worst, Math.abs(derived.hu[i]! - expected));
    }
    expect(worst).toBeLessThanOrEqual(0.5);
    expect(ctx.ledger.jobs.events(job.id).map((e) => e.kind)).toEqual(expect.arrayContaining(["probe", "inferred", "checks", "stored", "preview", "done"]));
  }, 120_000);

  it("fails a run whose model stage hits a defect (a TypeError) in that stage, for good, with what it was", async () => {
    expect(ctx.ledger.jobs.requeue(job.id, "test: a new run")).toBe(true);
    ctx.inference = identityModel(8, 8, new TypeError("Cannot read properties of undefined (reading 'buffer')"));
    const failed = await runJob(ctx, ctx.ledger.jobs.get(job.id)!);
    expect(failed).toMatchObject({ state: JobState.Failed, run: 2, errorStage: "infer", errorRetryable: false });
    expect(failed.errorMessage).toMatch(/unexpected error \(a defect of ct-enhance, not retried\): TypeError: Cannot read/);
    expect(await ctx.orthanc.seriesIdOf(outputSeriesUid(failed, "series"))).toBeUndefined();
  }, 120_000);
});
