/**
 * The manifest's optional `candidateClassifier` (Detector v2's second stage): accepted on detection models only,
 * strict (a misspelt key is refused, not ignored), with the interface's defaults; its file's sha256 is checked when
 * the models are loaded, like the model's own. A detector without the key stays a one-stage detector.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ModelManifest } from "../../src/models/manifest.js";
import { ModelRegistry } from "../../src/models/registry.js";
import { twoStageManifest, twoStageModelFolder } from "../helpers/two-stage-detector.js";

const repoRoot = path.resolve(import.meta.dirname, "../..");
const SHA = "ab".repeat(32);

function classifierOf(manifest: Record<string, unknown>): Record<string, unknown> {
  return manifest.candidateClassifier as Record<string, unknown>;
}

function problems(raw: unknown): string[] {
  const parsed = ModelManifest.safeParse(raw);
  return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}

describe("the manifest's candidateClassifier", () => {
  it("is accepted on a detection model, with patchVoxels 32 and spacingMm 1 unless it says otherwise", () => {
    const raw = twoStageManifest(32, SHA);
    const { patchVoxels: _p, spacingMm: _s, ...rest } = classifierOf(raw);
    const parsed = ModelManifest.parse({ ...raw, candidateClassifier: rest });
    expect(parsed.candidateClassifier).toEqual({
      file: "classifier.onnx", sha256: SHA, input: "patch", output: "probability", patchVoxels: 32, spacingMm: 1,
      intensity: { huMin: -1000, huMax: 400, networkMin: 0, networkMax: 1 }, threshold: 0.5,
    });
    const withFp16 = { ...raw, candidateClassifier: { ...classifierOf(raw), fp16: { file: "classifier.fp16.onnx", sha256: SHA } } };
    expect(ModelManifest.parse(withFp16).candidateClassifier?.fp16).toEqual({ file: "classifier.fp16.onnx", sha256: SHA });
  });

  it("is refused on a model that is not a detector", () => {
    const raw = { ...twoStageManifest(32, SHA), task: "denoise", output: { name: "output", meaning: "hu-image" } };
    expect(problems(raw)).toEqual(["candidateClassifier: only detection models have a candidate classifier"]);
  });

  it.each([
    ["an unknown key", (c: Record<string, unknown>) => ({ ...c, treshold: 0.4 }), /candidateClassifier: Unrecognized key: "treshold"/],
    ["a sha256 that is not hex", (c: Record<string, unknown>) => ({ ...c, sha256: "xyz" }), /^candidateClassifier\.sha256: /],
    ["a threshold above 1", (c: Record<string, unknown>) => ({ ...c, threshold: 1.5 }), /^candidateClassifier\.threshold: /],
    ["no threshold", ({ threshold: _t, ...c }: Record<string, unknown>) => c, /^candidateClassifier\.threshold: /],
    ["a patch of 31.5 points", (c: Record<string, unknown>) => ({ ...c, patchVoxels: 31.5 }), /^candidateClassifier\.patchVoxels: /],
    ["a zero spacing", (c: Record<string, unknown>) => ({ ...c, spacingMm: 0 }), /^candidateClassifier\.spacingMm: /],
    ["an empty HU range", (c: Record<string, unknown>) => ({ ...c, intensity: { huMin: 400, huMax: 400, networkMin: 0, networkMax: 1 } }),
      /^candidateClassifier\.intensity: huMax must exceed huMin/],
    ["an unknown intensity key", (c: Record<string, unknown>) => ({ ...c, intensity: { huMin: -1000, huMax: 400, networkMin: 0, networkMax: 1, gamma: 2 } }),
      /^candidateClassifier\.intensity: Unrecognized key: "gamma"/],
    ["an fp16 copy without its sha256", (c: Record<string, unknown>) => ({ ...c, fp16: { file: "c.fp16.onnx" } }), /^candidateClassifier\.fp16\.sha256: /],
  ])("is refused with %s", (_name, change, expected) => {
    const raw = twoStageManifest(32, SHA);
    const found = problems({ ...raw, candidateClassifier: change(classifierOf(raw)) });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(expected);
  });

  it("is optional: the shipped detector's manifest without it is a one-stage detector", () => {
    const { candidateClassifier: _c, ...raw } = JSON.parse(readFileSync(path.join(repoRoot, "models", "nodule-detector-small.json"), "utf8")) as Record<string, unknown>;
    const parsed = ModelManifest.parse(raw);
    expect(parsed.task).toBe("detection");
    expect(parsed.candidateClassifier).toBeUndefined();
  });
});

describe("loading a two-stage detector", () => {
  it("checks the classifier file's sha256 and gives its path", async () => {
    const folder = twoStageModelFolder(8);
    const model = (await ModelRegistry.load(folder)).get("two-stage-test");
    expect(model.classifierPath).toBe(path.join(folder, "classifier.onnx"));
  });

  it("refuses a classifier whose sha256 differs from the manifest's, naming it", async () => {
    const folder = twoStageModelFolder(8, (m) => ({ ...m, candidateClassifier: { ...classifierOf(m), sha256: SHA } }));
    await expect(ModelRegistry.load(folder)).rejects.toThrow(
      new RegExp(`^model two-stage-test \\(candidate classifier\\): .*classifier\\.onnx has sha256 [0-9a-f]{64}, the manifest says ${SHA}$`),
    );
  });

  it("refuses a classifier file that is not there", async () => {
    const folder = twoStageModelFolder(8, (m) => ({ ...m, candidateClassifier: { ...classifierOf(m), file: "missing.onnx" } }));
    await expect(ModelRegistry.load(folder)).rejects.toThrow(/^model two-stage-test \(candidate classifier\): cannot read .*missing\.onnx/);
  });
});
