/**
 * The second stage of a two-stage detector (src/models/candidate-classifier.ts) with a real onnxruntime session in
 * the inference worker: the classifier is a tiny ONNX graph built here that scores a patch by its mean (HU -1000..400
 * mapped to 0..1). Candidates on bright tissue are kept, those on air are dropped, one at the volume's corner loses
 * the part of its patch outside the volume (huMin), and each kept finding's confidence is the graph's output.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Finding } from "../../src/dicom/finding.js";
import { deterministicUid } from "../../src/dicom/uid.js";
import { classifyCandidates, huForPatches } from "../../src/models/candidate-classifier.js";
import { samplePatch, type SampledVolume } from "../../src/models/candidate-patches.js";
import { InferenceService } from "../../src/models/inference.js";
import { ModelRegistry, type RegisteredModel } from "../../src/models/registry.js";
import { twoStageModelFolder } from "../helpers/two-stage-detector.js";

const P = 8;
const SLICES = 24;
const ROWS = 40;
const COLUMNS = 48;
const NAMESPACE = "2.25.4242";

/** 1 mm slices, 0.8 mm rows and 1.25 mm columns of air (-1000 HU) with boxes of tissue in it. */
function volume(): SampledVolume & { hu: Float32Array } {
  const hu = new Float32Array(SLICES * ROWS * COLUMNS).fill(-1000);
  const box = (k0: number, k1: number, r0: number, r1: number, c0: number, c1: number, value: number) => {
    for (let k = k0; k <= k1; k++) for (let r = r0; r <= r1; r++) for (let c = c0; c <= c1; c++) hu[(k * ROWS + r) * COLUMNS + c] = value;
  };
  box(1, 14, 1, 19, 1, 14, 100); // soft tissue: 1100 / 1400 of the way up
  box(1, 14, 21, 38, 17, 30, -300); // half way: 0.5, the classifier's threshold
  box(0, 6, 0, 6, 40, 47, 400); // the corner at slice 0, row 0, last column: bright, but much of the patch is outside
  return { slices: SLICES, rows: ROWS, columns: COLUMNS, hu, sliceSpacing: 1, pixelSpacing: [0.8, 1.25] };
}

/** A candidate whose mask is the 3 x 3 x 3 voxels around (k, r, c): its centroid is (k, r, c). */
function candidate(k: number, r: number, c: number, n: number): Finding {
  const pixels = [-1, 0, 1].flatMap((dr) => [-1, 0, 1].map((dc) => (r + dr) * COLUMNS + c + dc));
  return {
    trackingId: `Nodule ${n}`,
    trackingUid: deterministicUid("ct-enhance", "finding", NAMESPACE, n),
    findingCode: { value: "27925004", scheme: "SCT", meaning: "Nodule" },
    findingSiteCode: { value: "39607008", scheme: "SCT", meaning: "Lung" },
    centroidPatientMm: [k, r, c],
    mask: [k - 1, k, k + 1].filter((s) => s >= 0).map((slice) => ({ slice, pixels: pixels.filter((p) => p >= 0) })),
    longestDiameterMm: 3,
    volumeMm3: 27,
    probability: 0.99,
  };
}

describe("the candidate classifier stage", () => {
  const inference = new InferenceService("cpu", 1);
  let model: RegisteredModel;
  beforeAll(async () => {
    model = (await ModelRegistry.load(twoStageModelFolder(P))).get("two-stage-test");
  });
  afterAll(() => inference.close());

  it("keeps the candidates the classifier scores at or above its threshold, with its probability as their confidence", async () => {
    const ct = volume();
    const dark = candidate(18, 10, 24, 1); // air
    const tissue = candidate(7, 10, 7, 2); // inside the 100 HU box, the whole patch too
    const half = candidate(7, 30, 23, 3); // inside the -300 HU box
    const corner = { ...candidate(1, 1, 46, 4), mask: [{ slice: 0, pixels: [46] }] }; // centroid (0, 0, 46): 400 HU, at the edge
    const classified = await classifyCandidates(inference, model, { ...ct, hu: await huForPatches(ct.hu) }, [dark, tissue, half, corner],
      { trackingNamespace: NAMESPACE, trackingLabel: "Nodule" });
    expect(classified.candidates).toBe(4);
    expect(classified.kept.map((f) => f.mask)).toEqual([tissue.mask, half.mask]);
    expect(classified.kept[0]!.probability).toBeCloseTo(1100 / 1400, 6); // the graph's float32 mean of 512 equal values
    expect(classified.kept[1]!.probability).toBe(0.5);
    // Numbered again, the most probable first, with the UIDs the one-stage detector would give those numbers.
    expect(classified.kept.map((f) => [f.trackingId, f.trackingUid])).toEqual([
      ["Nodule 1", deterministicUid("ct-enhance", "finding", NAMESPACE, 1)],
      ["Nodule 2", deterministicUid("ct-enhance", "finding", NAMESPACE, 2)],
    ]);
    expect(classified.kept[0]).toMatchObject({ centroidPatientMm: tissue.centroidPatientMm, volumeMm3: 27, longestDiameterMm: 3 });
  });

  it("scores each candidate with the graph's output on the patch the sampler gives (the corner's: under half inside)", async () => {
    const ct = volume();
    const corner = { ...candidate(1, 1, 46, 1), mask: [{ slice: 0, pixels: [46] }] };
    const patch = new Float32Array(P ** 3);
    samplePatch(ct, { slice: 0, row: 0, column: 46 }, model.manifest.candidateClassifier!, patch);
    const mean = patch.reduce((sum, v) => sum + v, 0) / patch.length;
    // Inside: slices 0.5..3.5 (4 of 8 points, 1 mm apart), rows 0.625..4.375 (4 of 8, 1.25 rows apart), columns
    // 43.2..46.4 (5 of 8, 0.8 columns apart; 47.2 is past the last); all in the 400 HU box (1), the rest huMin (0).
    expect(mean).toBe((4 * 4 * 5) / 512);
    const scores = await inference.classify(model, patch.slice(), 1);
    expect(scores.probabilities[0]).toBeCloseTo(mean, 6);
    expect(scores.provider).toBe("cpu");
    const lowered = { ...model, manifest: { ...model.manifest, candidateClassifier: { ...model.manifest.candidateClassifier!, threshold: 0.1 } } };
    const classified = await classifyCandidates(inference, lowered, ct, [corner], { trackingNamespace: NAMESPACE, trackingLabel: "Nodule" });
    expect(classified.kept.map((f) => f.probability)).toEqual([scores.probabilities[0]]);
  });

  it("scores many candidates in batches, in order", async () => {
    const ct = volume();
    // Bright and dark by turns, each marked by its index; 37 = two full batches of 16 and a part.
    const many = Array.from({ length: 37 }, (_, i) => ({
      ...(i % 2 === 0 ? candidate(7, 10, 7, i + 1) : candidate(18, 10, 24, i + 1)),
      centroidPatientMm: [i, 0, 0] as [number, number, number],
    }));
    const classified = await classifyCandidates(inference, model, ct, many, { trackingNamespace: NAMESPACE, trackingLabel: "Nodule" });
    expect(classified.candidates).toBe(37);
    expect(classified.kept.map((f) => f.centroidPatientMm[0]).sort((a, b) => a - b)).toEqual(Array.from({ length: 19 }, (_, i) => 2 * i));
    for (const f of classified.kept) expect(f.probability).toBeCloseTo(1100 / 1400, 6);
  });

  it("asks the classifier nothing when there is no candidate", async () => {
    const refuse = { classify: () => Promise.reject(new Error("not to be called")) };
    expect(await classifyCandidates(refuse, model, volume(), [], { trackingNamespace: NAMESPACE, trackingLabel: "Nodule" })).toEqual({ kept: [], candidates: 0 });
  });

  it("keeps the HU as 16-bit integers when every voxel is one, else as they are", async () => {
    expect(await huForPatches(Float32Array.from([-32768, -1024, 0, 3071, 32767]))).toEqual(Int16Array.from([-32768, -1024, 0, 3071, 32767]));
    expect(await huForPatches(Float32Array.from([-1024, 40000]))).toBeInstanceOf(Float32Array);
    const fractional = await huForPatches(Float32Array.from([-1024, 0.5, 3071]));
    expect(fractional).toBeInstanceOf(Float32Array);
    expect(Array.from(fractional)).toEqual([-1024, 0.5, 3071]);
  });
});

describe("warming a two-stage detector", () => {
  const inference = new InferenceService("cpu", 1);
  afterAll(() => inference.close());

  it("loads and runs its classifier too", async () => {
    const model = (await ModelRegistry.load(twoStageModelFolder(P))).get("two-stage-test");
    const warm = await inference.warmup(model);
    expect(warm.provider).toBe("cpu");
  });

  it("fails when the classifier cannot be loaded, naming it, though the detector loads", async () => {
    const notOnnx = Uint8Array.from(Buffer.from("not an ONNX file"));
    const model = (await ModelRegistry.load(twoStageModelFolder(P, undefined, notOnnx))).get("two-stage-test");
    await expect(inference.warmup(model)).rejects.toThrow(/no execution provider could load model two-stage-test \(candidate classifier\): cpu fp32: /);
  });
});

describe("a classifier's fp16 copy", () => {
  const fp16Everywhere = new InferenceService("cpu", 1, "fp16");
  afterAll(() => fp16Everywhere.close());
  /** The copy is the same graph (float32 in and out, as an export with keep_io_types): which file ran is the point. */
  const withCopy = (sha256: (own: string) => string) => (m: Record<string, unknown>) => {
    const classifier = m.candidateClassifier as Record<string, unknown>;
    return { ...m, candidateClassifier: { ...classifier, fp16: { file: "classifier.onnx", sha256: sha256(classifier.sha256 as string) } } };
  };

  it("runs where the precision setting asks for it, its sha256 checked", async () => {
    const model = (await ModelRegistry.load(twoStageModelFolder(P, withCopy((own) => own)))).get("two-stage-test");
    const scores = await fp16Everywhere.classify(model, new Float32Array(P ** 3).fill(0.25), 1);
    expect(scores.precision).toBe("fp16");
    expect(scores.probabilities[0]).toBeCloseTo(0.25, 6);
  });

  it("is left for the fp32 file when its sha256 differs", async () => {
    const model = (await ModelRegistry.load(twoStageModelFolder(P, withCopy(() => "cd".repeat(32))))).get("two-stage-test");
    const scores = await fp16Everywhere.classify(model, new Float32Array(P ** 3).fill(0.25), 1);
    expect(scores.precision).toBe("fp32");
  });
});
