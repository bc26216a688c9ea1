/**
 * IHE AI Results (AIR) checklist (docs/ihe-air.md) over what a real job stores: a 24-slice run of LIDC-IDRI-0002 in a
 * real Orthanc, two pipelines run by the service's own runner in this process (probe, intended use, output checks,
 * the writers, the findings encoder thread, STOW-RS), then the derived CT, the SR and the SEG read back from Orthanc.
 * Each row of the checklist is checked through dcmjs and through dcmdump (and dsrdump for the SR), and each object
 * passes dciodvfy with zero errors. The networks are stand-ins (what AIR judges is the objects, not the model): an
 * identity "synthesis" streaming its input back, and a "detector" whose map holds one blob inside the lungs, so the
 * job writes one finding; the manifests are the real shipped networks' (fixtures with open safeguards), whose
 * sha256 goes into the Device UID.
 * Last, the same detection job run again from an empty ledger (as after a crash between the SR's store and the job's
 * end): it finds its output whole in Orthanc and ends done, running no model and storing nothing, and its result
 * notification tells the outputs and findings the first run's told, read back from the stored SR and SEG.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { data } from "dcmjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import type { AlgorithmDevice } from "../../src/dicom/contributing-equipment.js";
import { CT_OF_CHEST } from "../../src/dicom/sr/codes.js";
import { type Job, JobState } from "../../src/jobs/job-records.js";
import type { InferenceService, InferenceSummary, OutputSink } from "../../src/models/inference.js";
import type { ResultNotification } from "../../src/notify/result-notification.js";
import { outputSeriesUid } from "../../src/pipeline/outputs/output-plan.js";
import { type PipelineContext, runJob } from "../../src/pipeline/runner.js";
import { openContext } from "../../src/service/service.js";
import { SOFTWARE_NAME, SOFTWARE_VERSION } from "../../src/version.js";
import { AIR_CHECKLIST, type AirExpectations, type AirObject, type AirObjectKind, measurementGroups } from "../helpers/air-checklist.js";
import { requireCtData } from "../helpers/ct-data.js";
import { contiguousSubset, type SeriesSubset } from "../helpers/ct-subset.js";
import { dcmdumpTree, dsrdumpText } from "../helpers/dcmdump-tree.js";
import { startOrthanc, REPO_ROOT, type TestOrthanc } from "../helpers/orthanc.js";
import { dciodvfy } from "../helpers/sr-fixtures.js";
import { requireOrthanc, requireTools } from "../helpers/system-tools.js";

const ready = requireCtData("lidc-idri-0002-ncct") && requireOrthanc() && requireTools("dsrdump");
const SLICES = 24;
const KNOWN_WARNINGS = [
  /^Warning - <\/(StudyTime\(0008,0030\)|StudyID\(0020,0010\))> - Missing attribute or value that would be needed to build DICOMDIR$/,
  /CodingSchemeDesignator\(0008,0102\)\[1\]> - Unrecognized defined term = <99CTENHANCE>$/,
];

type Volume = { hu: Float32Array; slices: number; rows: number; columns: number };

/** A point well inside a lung on the middle slice: a 15 mm box of air (< -700 HU) with body tissue on all four sides. */
function lungPoint(v: Volume): { slice: number; row: number; column: number } {
  const slice = Math.floor(v.slices / 2);
  const plane = v.hu.subarray(slice * v.rows * v.columns, (slice + 1) * v.rows * v.columns);
  const at = (r: number, c: number): number => plane[r * v.columns + c]!;
  const tissue = (values: number[]): boolean => values.some((x) => x > -300);
  for (let row = Math.floor(v.rows * 0.3); row < v.rows * 0.7; row += 4) {
    for (let column = Math.floor(v.columns * 0.15); column < v.columns * 0.85; column += 4) {
      let air = true;
      for (let dr = -10; dr <= 10 && air; dr += 2) for (let dc = -10; dc <= 10 && air; dc += 2) air = at(row + dr, column + dc) < -700;
      if (!air) continue;
      const line = (n: number, f: (i: number) => number): number[] => Array.from({ length: n }, (_, i) => f(i));
      const enclosed = tissue(line(column, (c) => at(row, c))) && tissue(line(v.columns - column, (c) => at(row, column + c)))
        && tissue(line(row, (r) => at(r, column))) && tissue(line(v.rows - row, (r) => at(row + r, column)));
      if (enclosed) return { slice, row, column };
    }
  }
  throw new Error("no lung point found on the middle slice");
}

/** Stand-in networks: the synthesis streams its input back; the detector maps one 8 mm blob at a lung point. */
function standInNetworks(): InferenceService {
  const summary: InferenceSummary = { provider: "cpu", precision: "fp32", batchSize: 8, inferenceMs: 1, fallbacks: [] };
  const run = async (_model: unknown, v: Volume, sink: OutputSink): Promise<InferenceSummary & { output?: Float32Array }> => {
    const plane = v.rows * v.columns;
    if (sink !== "over-input") {
      for (let first = 0; first < v.slices; first += 8) sink.streamTo(first, v.hu.slice(first * plane, Math.min(v.slices, first + 8) * plane));
      return summary;
    }
    const { slice, row, column } = lungPoint(v);
    const output = new Float32Array(v.hu.length);
    for (let k = slice - 1; k <= slice + 1; k += 1) {
      for (let dr = -6; dr <= 6; dr += 1) for (let dc = -6; dc <= 6; dc += 1) {
        if (dr * dr + dc * dc <= 36) output[k * plane + (row + dr) * v.columns + column + dc] = 0.99;
      }
    }
    return { ...summary, output };
  };
  return { run } as unknown as InferenceService;
}

describe.runIf(ready)("IHE AIR checklist over a real job's derived CT, SR and SEG (real Orthanc, stand-in networks)", () => {
  let orthanc: TestOrthanc;
  let subset: SeriesSubset;
  let dataDir: string;
  let ctx: PipelineContext;
  let detectionDone: Job;
  const objects = new Map<AirObjectKind, AirObject>();
  const files = new Map<AirObjectKind, string>();
  const expected = new Map<AirObjectKind, AirExpectations>();

  /**
   * The service's settings over the test Orthanc, with a result webhook configured: job ends queue their
   * notifications in the ledger (nothing sends them here), which the tests read.
   */
  const settings = (folder: string): Record<string, string> => ({
    CT_ENHANCE_ORTHANC_URL: orthanc.url,
    CT_ENHANCE_ORTHANC_USERNAME: orthanc.username,
    CT_ENHANCE_ORTHANC_PASSWORD: orthanc.password,
    CT_ENHANCE_DATA_DIR: folder,
    CT_ENHANCE_PIPELINES_FILE: path.join(REPO_ROOT, "tests", "fixtures", "pipelines-air.json"),
    CT_ENHANCE_MODELS_DIR: path.join(REPO_ROOT, "tests", "fixtures", "air-models"),
    CT_ENHANCE_WEBHOOK_URL: "http://127.0.0.1:9/never-sent",
    CT_ENHANCE_WEBHOOK_SECRET: "air-checklist-not-sent",
  });

  /** What the job's queued result notification says was stored and found. */
  const notified = (ledger: PipelineContext["ledger"], jobId: number): Pick<ResultNotification, "outputs" | "findings"> => {
    const queued = ledger.notifications.list({ jobId });
    expect(queued).toHaveLength(1);
    const { outputs, findings } = JSON.parse(queued[0]!.body) as ResultNotification;
    return { outputs, findings };
  };

  /** The first instance of the output series `uid`, as Orthanc stores it, written to a file and parsed twice. */
  const fetchObject = async (kind: AirObjectKind, uid: string): Promise<void> => {
    const seriesId = await ctx.orthanc.seriesIdOf(uid);
    expect(seriesId, `${kind}: series ${uid} is in Orthanc`).toBeDefined();
    const series = await orthanc.rest<{ Instances: string[] }>(`/series/${seriesId}`);
    const bytes = await orthanc.restBytes(`/instances/${series.Instances[0]}/file`);
    const file = path.join(dataDir, `${kind.replace(" ", "-")}.dcm`);
    writeFileSync(file, bytes);
    const ds = data.DicomMetaDictionary.naturalizeDataset(data.DicomMessage.readFile(bytes.slice().buffer).dict);
    objects.set(kind, { kind, ds, dump: dcmdumpTree(file), ...(kind === "SR" ? { dsr: dsrdumpText(file).text } : {}) });
    files.set(kind, file);
  };

  const runPipeline = async (index: number): Promise<Job> => {
    const pipeline = ctx.pipelines[index]!;
    const seriesId = (await orthanc.rest<string[]>("/series"))[0]!;
    const series = (await ctx.orthanc.series(seriesId))!;
    const study = (await ctx.orthanc.study(series.ParentStudy))!;
    const { manifest } = ctx.models.get(pipeline.model);
    const job = ctx.ledger.jobs.create({
      sourceOrthancId: seriesId,
      sourceSeriesUid: series.MainDicomTags.SeriesInstanceUID!,
      studyUid: study.MainDicomTags.StudyInstanceUID!,
      pipeline: pipeline.id,
      modelId: pipeline.model,
      modelVersion: manifest.version,
    }).job;
    const done = await runJob(ctx, job);
    expect(done.state, `${pipeline.id}: ${done.errorMessage ?? ""}`).toBe(JobState.Done);
    const device: AlgorithmDevice = {
      manufacturer: SOFTWARE_NAME, modelId: manifest.id, modelVersion: manifest.version, modelSha256: manifest.sha256, softwareVersion: SOFTWARE_VERSION,
    };
    const expectation = { device, modelName: manifest.name, procedureReported: CT_OF_CHEST };
    for (const kind of manifest.task === "detection" ? (["SR", "SEG"] as const) : (["derived CT"] as const)) expected.set(kind, expectation);
    return done;
  };

  beforeAll(async () => {
    subset = contiguousSubset("lidc-idri-0002-ncct", SLICES);
    orthanc = await startOrthanc();
    await orthanc.uploadFolder(subset.folder);
    dataDir = mkdtempSync(path.join(tmpdir(), "ct-enhance-air-"));
    ctx = await openContext(loadConfig(undefined, settings(dataDir)));
    ctx.inference = standInNetworks();
    const synthesis = await runPipeline(0);
    const detection = await runPipeline(1);
    detectionDone = detection;
    await fetchObject("derived CT", outputSeriesUid(synthesis, "series"));
    await fetchObject("SR", outputSeriesUid(detection, "sr-series"));
    await fetchObject("SEG", outputSeriesUid(detection, "seg-series"));
  }, 300_000);

  afterAll(async () => {
    ctx?.ledger.close();
    await orthanc?.stop();
    subset?.remove();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  for (const row of AIR_CHECKLIST) {
    for (const kind of row.objects) {
      it(`${row.id} ${kind}: ${row.requirement}`, () => row.check(objects.get(kind)!, expected.get(kind)!));
    }
  }

  it("X-1 SR and SEG: each segment's Tracking ID and Tracking UID are its finding's in the SR", () => {
    const sr = objects.get("SR")!;
    const seg = objects.get("SEG")!;
    const inSr = measurementGroups(sr.ds).filter((g) => g.template === "DCMR 1411").map((g) =>
      ["112039", "112040"].map((code) => g.children!.find((c) => c.concept?.startsWith(`(${code}, DCM`))!.value));
    const segments = (seg.ds.SegmentSequence as { TrackingID: string; TrackingUID: string }[]).map((s) => [s.TrackingID, s.TrackingUID]);
    expect(segments.length).toBe(1);
    expect(segments).toEqual(inSr);
  });

  it("passes dciodvfy with zero errors: derived CT, SR and SEG (warnings counted)", () => {
    const counts: Record<string, { errors: number; warnings: number; olderValidatorWarnings: number }> = {};
    for (const [kind, file] of files) {
      const result = dciodvfy(file);
      const allWarnings = result.output.split("\n").filter((l) => l.startsWith("Warning")).length;
      counts[kind] = { errors: result.errors.length, warnings: result.warnings.length, olderValidatorWarnings: allWarnings - result.warnings.length };
      if (process.env.AIR_SHOW_WARNINGS) console.info(`${kind}:\n${result.warnings.join("\n")}`);
      expect(result.errors, `${kind}:\n${result.output}`).toEqual([]);
      // The warnings left are the source's own (LIDC-IDRI-0002 has no StudyTime or StudyID; type 2, copied empty)
      // and our private coding scheme (99CTENHANCE, described in Coding Scheme Identification): nothing else.
      const unexplained = result.warnings.filter((w) => !KNOWN_WARNINGS.some((known) => known.test(w)));
      expect(unexplained, `${kind}:\n${result.output}`).toEqual([]);
    }
    console.info(`dciodvfy per object: ${JSON.stringify(counts)}`);
    expect(Object.keys(counts).sort()).toEqual(["SEG", "SR", "derived CT"]);
  });

  /**
   * The detection job run again from an empty ledger with a model that must not run; `check` looks at its end, its
   * timeline and its queued notification before the ledger closes.
   */
  const detectionAgain = async (check: (events: string[], notice: ReturnType<typeof notified>) => void): Promise<void> => {
    const emptyDir = mkdtempSync(path.join(tmpdir(), "ct-enhance-air-again-"));
    const again = await openContext(loadConfig(undefined, settings(emptyDir)));
    again.inference = { run: () => Promise.reject(new Error("the model must not run: the output is already whole")) } as unknown as InferenceService;
    try {
      const job = again.ledger.jobs.create({
        sourceOrthancId: detectionDone.sourceOrthancId, sourceSeriesUid: detectionDone.sourceSeriesUid, studyUid: detectionDone.studyUid,
        pipeline: detectionDone.pipeline, modelId: detectionDone.modelId, modelVersion: detectionDone.modelVersion,
      }).job;
      const ended = await runJob(again, job);
      expect(ended.state, ended.errorMessage ?? "").toBe(JobState.Done);
      check(again.ledger.jobs.events(job.id).map((e) => `${e.kind}: ${e.message}`), notified(again.ledger, job.id));
    } finally {
      again.ledger.close();
      rmSync(emptyDir, { recursive: true, force: true });
    }
  };

  it("the detection job again, from an empty ledger: finds its output whole, runs no model, stores nothing more, " +
    "and notifies the outputs and findings the first run notified, read back from the stored SR and SEG", async () => {
    const instancesBefore = (await orthanc.rest<string[]>("/instances")).length;
    const first = notified(ctx.ledger, detectionDone.id);
    expect(first.findings?.count).toBe(1);
    expect(first.outputs.map((o) => [o.kind, o.instances])).toEqual([["sr", 1], ["seg", 1]]);
    await detectionAgain((events, notice) => {
      const srUid = outputSeriesUid(detectionDone, "sr-series");
      expect(events).toContain(`skipped-store: series ${srUid} is already complete in Orthanc (earlier attempt)`);
      expect(events.filter((e) => /^(inferred|stored):/.test(e))).toEqual([]);
      expect(events.filter((e) => /^done: .* already stored by an earlier attempt \(1 finding\(s\) in its report\)/.test(e))).toHaveLength(1);
      expect(notice).toEqual(first);
    });
    expect((await orthanc.rest<string[]>("/instances")).length).toBe(instancesBefore);
  });

  it("and once its SEG was deleted from Orthanc: still done (the report is stored), the findings unknown and why", async () => {
    const segId = await ctx.orthanc.seriesIdOf(outputSeriesUid(detectionDone, "seg-series"));
    await ctx.orthanc.deleteSeries(segId!);
    await detectionAgain((events, notice) => {
      expect(events.filter((e) => e.startsWith("findings-unread:"))).toEqual([
        "findings-unread: the stored output's findings could not be read back: the stored report has 1 finding(s) but its segmentation is not stored",
      ]);
      expect(notice.findings).toBeNull();
      expect(notice.outputs.map((o) => o.kind)).toEqual(["sr"]);
    });
  });

  it("dsrdump reads the SR without complaint", () => {
    const { stderr, status } = dsrdumpText(files.get("SR")!);
    expect(status).toBe(0);
    // DCMTK 3.6.7 says once that it cannot check string VRs in UTF-8 (ISO_IR 192); anything else would be a finding.
    const complaints = stderr.split("\n").filter((l) => /^[EWF]:/.test(l) && !/VR checker does not support this Specific Character Set/.test(l));
    expect(complaints, stderr).toEqual([]);
  });
});
