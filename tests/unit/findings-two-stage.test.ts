/**
 * The findings plan of a two-stage detector (src/pipeline/outputs/findings.ts), from the probability map to the SR
 * and SEG a scripted STOW-RS server receives: the map's candidates in the lungs go to the candidate classifier (a
 * real onnxruntime session on a tiny mean-scoring graph), only the one on tissue is kept, its confidence is the
 * classifier's probability, the job timeline's line counts both, and the SR says whose probability it is and stays
 * dciodvfy-clean. The same manifest without the key gives today's one-stage findings and never asks the classifier.
 * A finding longer than the detector's range is reported as a mass outside its scope, not as a nodule.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CtVolume } from "../../src/dicom/ct-volume.js";
import { contentTree } from "../../src/dicom/sr/content-tree.js";
import type { DicomwebEndpoint } from "../../src/dicomweb/endpoint.js";
import { boundaryOf, readMultipartParts } from "../../src/dicomweb/multipart.js";
import type { Job } from "../../src/jobs/job-records.js";
import type { ProbedVolume } from "../../src/measure/anatomy-probe.js";
import { InferenceService } from "../../src/models/inference.js";
import { ModelManifest } from "../../src/models/manifest.js";
import { ModelRegistry, type RegisteredModel } from "../../src/models/registry.js";
import { findingsPlan } from "../../src/pipeline/outputs/findings.js";
import type { PlanIo, PlanOutcome } from "../../src/pipeline/outputs/output-plan.js";
import type { PipelineDefinition } from "../../src/pipeline/pipelines.js";
import { COLUMNS, dciodvfy, readNaturalized, ROWS, SLICES, syntheticVolume, tempFile } from "../helpers/sr-fixtures.js";
import { requireTools } from "../helpers/system-tools.js";
import { twoStageModelFolder } from "../helpers/two-stage-detector.js";

const PLANE = ROWS * COLUMNS;

let server: Server;
let endpoint: DicomwebEndpoint;
/** Every instance the server was sent, in order. */
let received: Uint8Array[] = [];

async function collect(parts: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const part of parts) out.push(part);
  return out;
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      void collect(readMultipartParts([Buffer.concat(chunks)], boundaryOf(req.headers["content-type"] ?? ""))).then((parts) => {
        received.push(...parts);
        const stored = parts.map((p) => {
          const ds = readNaturalized(p);
          return { "00081150": { vr: "UI", Value: [ds.SOPClassUID] }, "00081155": { vr: "UI", Value: [ds.SOPInstanceUID] } };
        });
        res.writeHead(200, { "Content-Type": "application/dicom+json" });
        res.end(JSON.stringify({ "00081198": { vr: "SQ" }, "00081199": { vr: "SQ", Value: stored } }));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  endpoint = { root: `http://127.0.0.1:${(server.address() as AddressInfo).port}/dicom-web/`, headers: {} };
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

/** -800 HU with a 100 HU block of tissue (slices all, rows and columns 10..30). */
function ct(): CtVolume {
  const volume = syntheticVolume();
  for (let k = 0; k < SLICES; k++) for (let r = 10; r <= 30; r++) for (let c = 10; c <= 30; c++) volume.hu[k * PLANE + r * COLUMNS + c] = 100;
  return volume;
}

/** The map: 0.99 on 3 x 3 x 3 voxels in the tissue block (around 4, 20, 20) and in the air (around 4, 46, 46). */
function probabilityMap(): Float32Array {
  const map = new Float32Array(SLICES * PLANE);
  for (const [r0, c0] of [[20, 20], [46, 46]] as const) {
    for (let k = 3; k <= 5; k++) for (let r = r0 - 1; r <= r0 + 1; r++) for (let c = c0 - 1; c <= c0 + 1; c++) map[k * PLANE + r * COLUMNS + c] = 0.99;
  }
  return map;
}

/** Lungs everywhere: the gating keeps both candidates. */
function probed(): ProbedVolume {
  return {
    coarse: { slices: SLICES, rows: ROWS, columns: COLUMNS, factor: 1, pixelMm: [0.7, 0.7], sliceMm: 1.25 },
    anatomy: { lungs: new Uint8Array(SLICES * PLANE).fill(1) },
  } as unknown as ProbedVolume;
}

const JOB = { sourceSeriesUid: "2.25.777", pipeline: "nodules", modelVersion: "2.0.0", run: 1 } as Job;

async function produce(model: RegisteredModel, classify: InferenceService["classify"], map = probabilityMap()): Promise<PlanOutcome> {
  received = [];
  const inference = {
    run: () => Promise.resolve({ output: map, provider: "cpu", precision: "fp32", batchSize: 1, inferenceMs: 1, fallbacks: [] }),
    classify,
  } as unknown as InferenceService;
  const io: PlanIo = {
    inference,
    endpoint,
    store: { instancesPerRequest: 4, parallelRequests: 1 },
    spoolDir: mkdtempSync(path.join(tmpdir(), "ct-enhance-fpr-spool-")),
    probed: probed(),
    overridden: undefined,
    onProgress: () => undefined,
    onInferenceDone: () => undefined,
  };
  return findingsPlan({ job: JOB, pipeline: {} as PipelineDefinition, pipelineOrdinal: 0, model }).produce(ct(), io);
}

const srOf = (instances: Uint8Array[]): Uint8Array => instances.find((i) => readNaturalized(i).Modality === "SR")!;

describe("a two-stage detector's findings", () => {
  const service = new InferenceService("cpu", 1);
  let model: RegisteredModel;
  beforeAll(async () => {
    model = (await ModelRegistry.load(twoStageModelFolder(8))).get("two-stage-test");
  });
  afterAll(() => service.close());

  it("are the candidates the classifier keeps, with its probability as their confidence, counted in the timeline", async () => {
    const outcome = await produce(model, (...args) => service.classify(...args));
    expect(outcome.summary).toMatch(/^2 candidates, 1 kept by the classifier; 1 finding\(s\); SR series [0-9.]+, SEG series [0-9.]+$/);
    expect(outcome.rejected).toBe(false);
    expect(outcome.findings?.items).toHaveLength(1);
    expect(outcome.findings?.items[0]).toMatchObject({ trackingId: "Nodule 1", probability: 0.786 }); // 1100 / 1400
    expect(outcome.findings?.scope).toMatch(/candidates above 0\.9 on the probability map, kept at a candidate classifier probability of 0\.5 or more/);
    const tree = JSON.stringify(contentTree(readNaturalized(srOf(received))));
    expect(tree).toContain("confidence: each finding's certainty is the candidate classifier's probability that it is a nodule (classifier.onnx, sha256 ");
    expect(tree).toMatch(/78\.57/); // Certainty of Finding, percent
  });

  it.skipIf(!requireTools("dciodvfy"))("are stored as an SR and a SEG that dciodvfy passes with no errors or warnings", async () => {
    await produce(model, (...args) => service.classify(...args));
    expect(received).toHaveLength(2);
    for (const [i, instance] of received.entries()) {
      const result = dciodvfy(tempFile(`two-stage-${i}.dcm`, instance));
      expect(result.errors, result.output).toEqual([]);
      expect(result.warnings, result.output).toEqual([]);
    }
  });

  it("are none when the classifier scores every candidate low: the SR alone says none was found", async () => {
    const outcome = await produce(model, (_model, _patches, count) =>
      Promise.resolve({ probabilities: new Float32Array(count).fill(0.2), provider: "cpu", precision: "fp32", inferenceMs: 1 }));
    expect(outcome.summary).toMatch(/^2 candidates, 0 kept by the classifier; 0 finding\(s\); SR series [0-9.]+$/);
    expect(received).toHaveLength(1);
  });

  it("without the manifest key are today's one-stage findings, the classifier never asked", async () => {
    const { candidateClassifier: _c, ...rest } = model.manifest;
    const oneStage: RegisteredModel = { manifest: ModelManifest.parse(rest), modelPath: model.modelPath };
    const outcome = await produce(oneStage, () => Promise.reject(new Error("a one-stage detector has no classifier")));
    expect(outcome.summary).toMatch(/^2 finding\(s\); SR series [0-9.]+, SEG series [0-9.]+$/);
    expect(outcome.findings?.items.map((f) => f.probability)).toEqual([0.99, 0.99]);
    expect(outcome.findings?.scope).toMatch(/probability above 0\.9;/);
    expect(JSON.stringify(contentTree(readNaturalized(srOf(received))))).not.toContain("candidate classifier");
  });

  it("report a finding longer than the detector's range as a mass outside its scope, in the SR, the SEG and the timeline", async () => {
    const { candidateClassifier: _c, ...rest } = model.manifest;
    const oneStage: RegisteredModel = { manifest: ModelManifest.parse(rest), modelPath: model.modelPath };
    // Beside the small candidate in the air: a 50 px (35 mm) long, 4 px thick slab in the tissue block's rows.
    const map = probabilityMap();
    for (let k = 2; k <= 5; k++) for (let r = 8; r <= 11; r++) for (let c = 7; c <= 56; c++) map[k * PLANE + r * COLUMNS + c] = 0.95;
    const outcome = await produce(oneStage, () => Promise.reject(new Error("one-stage")), map);
    expect(outcome.summary).toMatch(/^3 finding\(s\) \(1 over 30 mm reported as outside the scope\); SR series/);
    const items = outcome.findings!.items;
    const mass = items.find((f) => f.longestDiameterMm > 30)!;
    expect(mass.longestDiameterMm).toBeCloseTo(34.3, 0); // 49 px x 0.7 mm along the columns
    expect(mass.type).toEqual({ code: "4147007", scheme: "SCT", meaning: "Mass" });
    expect(mass.trackingId).toMatch(/^Mass [1-3]$/);
    expect(items.filter((f) => f.type.meaning === "Nodule").map((f) => f.trackingId)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^Nodule [1-3]$/)]));
    const tree = JSON.stringify(contentTree(readNaturalized(srOf(received))));
    expect(tree).toContain(`outside the scope: ${mass.trackingId} (34 mm) measured longer than 30 mm, reported as mass`);
    expect(tree).toContain("(4147007, SCT, \\\"Mass\\\")");
    const seg = readNaturalized(received.find((i) => readNaturalized(i).Modality === "SEG")!);
    const segment = (seg.SegmentSequence as Record<string, any>[]).find((s) => s.SegmentLabel === mass.trackingId)!;
    expect(segment.SegmentedPropertyTypeCodeSequence[0].CodeMeaning).toBe("Mass");
    expect(segment.SegmentDescription).toMatch(/^Mass, certainty/);
    if (requireTools("dciodvfy")) {
      for (const [i, instance] of received.entries()) {
        const result = dciodvfy(tempFile(`oversize-${i}.dcm`, instance));
        expect(result.errors, result.output).toEqual([]);
      }
    }
  });
});
