/**
 * A two-stage detection model in a folder of its own: a manifest with a `candidateClassifier`, the classifier a tiny
 * ONNX graph that scores a patch by its mean (tiny-onnx.ts), the detector one whose map is its channels' mean. The
 * sha256s are the files' own unless a test asks for another.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ANY_CT } from "./manifest-fields.js";
import { channelMeanDetector, meanScoreClassifier } from "./tiny-onnx.js";

const sha256 = (bytes: Uint8Array | string): string => createHash("sha256").update(bytes).digest("hex");

const DETECTOR = channelMeanDetector();

/** A detection manifest (as JSON) with a candidate classifier of P = `patchVoxels` and threshold 0.5. */
export function twoStageManifest(patchVoxels: number, classifierSha256: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: "two-stage-test",
    version: "2.0.0",
    task: "detection",
    name: "two-stage detector (test)",
    file: "detector.onnx",
    sha256: sha256(DETECTOR),
    input: { name: "input", layout: "NCHW", contextSlices: 3 },
    output: { name: "output", meaning: "probability-map" },
    intensity: { huMin: -1000, huMax: 400, networkMin: 0, networkMax: 1 },
    threshold: 0.9,
    ...ANY_CT,
    outputChecks: [{ measure: "findings", max: 20 }],
    candidateClassifier: {
      file: "classifier.onnx",
      sha256: classifierSha256,
      input: "patch",
      output: "probability",
      patchVoxels,
      spacingMm: 1,
      intensity: { huMin: -1000, huMax: 400, networkMin: 0, networkMax: 1 },
      threshold: 0.5,
    },
    ...overrides,
  };
}

/**
 * The folder with the manifest, the classifier and the detector; `manifest` may change the manifest, `classifier`
 * replace the classifier's bytes (its sha256 follows).
 */
export function twoStageModelFolder(
  patchVoxels: number,
  manifest: (m: Record<string, unknown>) => Record<string, unknown> = (m) => m,
  classifier: Uint8Array = meanScoreClassifier("patch", "probability", patchVoxels),
): string {
  const folder = mkdtempSync(path.join(tmpdir(), "ct-enhance-fpr-"));
  writeFileSync(path.join(folder, "classifier.onnx"), classifier);
  writeFileSync(path.join(folder, "detector.onnx"), DETECTOR);
  writeFileSync(path.join(folder, "two-stage-test.json"), JSON.stringify(manifest(twoStageManifest(patchVoxels, sha256(classifier)))));
  return folder;
}
