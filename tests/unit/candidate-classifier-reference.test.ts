/**
 * The node's candidate patches and classifier against training's: tests/fixtures/nodule-fpr-reference.json holds, for
 * the shipped detector's top candidates on LIDC-IDRI-0002, what training/fpr_patch.py (scipy's map_coordinates)
 * sampled and what the shipped classifier gave (training/fpr_reference.py). The node must sample the same patch from
 * the same series (mean, the central 2x2x2 voxels, the first corner) and get the same probability: a patch off by a
 * voxel or an axis, or a different intensity mapping, would feed the classifier inputs it was never trained on.
 */
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { assembleVolume } from "../../src/dicom/volume.js";
import { samplePatch } from "../../src/models/candidate-patches.js";
import { InferenceService } from "../../src/models/inference.js";
import { ModelRegistry } from "../../src/models/registry.js";
import { ctSeriesFolder, repoRoot, requireCtData } from "../helpers/ct-data.js";

interface ReferenceCandidate {
  voxel: [number, number, number];
  patchMean: number;
  patchCentre: number;
  patchCorner: number;
  probability: number;
}
const reference = JSON.parse(readFileSync(path.join(repoRoot, "tests/fixtures/nodule-fpr-reference.json"), "utf8")) as {
  classifierSha256: string;
  candidates: ReferenceCandidate[];
};

describe.runIf(requireCtData("lidc-idri-0002-ncct"))("candidate classifier: the node's patches and scores against training's", () => {
  const inference = new InferenceService("cpu", 0);
  afterAll(() => inference.close());

  it("samples the same patches from LIDC-IDRI-0002 and the shipped classifier scores them alike", async () => {
    const folder = ctSeriesFolder("lidc-idri-0002-ncct");
    const volume = await assembleVolume(readdirSync(folder).filter((f) => f.endsWith(".dcm")).map((f) => new Uint8Array(readFileSync(path.join(folder, f)))));
    const model = (await ModelRegistry.load(path.join(repoRoot, "models"))).get("nodule-detector-small");
    const grid = model.manifest.candidateClassifier!;
    expect(grid.sha256, "the fixture was made with the shipped classifier").toBe(reference.classifierSha256);
    const p = grid.patchVoxels;
    const size = p ** 3;
    const patches = new Float32Array(reference.candidates.length * size);
    for (const [i, candidate] of reference.candidates.entries()) {
      const [slice, row, column] = candidate.voxel;
      samplePatch(volume, { slice, row, column }, grid, patches, i * size);
      const patch = patches.subarray(i * size, (i + 1) * size);
      const mean = patch.reduce((sum, v) => sum + v, 0) / size;
      let centre = 0;
      for (const d of [15, 16]) for (const h of [15, 16]) for (const w of [15, 16]) centre += patch[(d * p + h) * p + w]! / 8;
      expect(mean, `candidate ${i}: patch mean`).toBeCloseTo(candidate.patchMean, 4);
      expect(centre, `candidate ${i}: central voxels`).toBeCloseTo(candidate.patchCentre, 4);
      expect(patch[0], `candidate ${i}: first corner`).toBeCloseTo(candidate.patchCorner, 4);
    }
    const { probabilities } = await inference.classify(model, patches, reference.candidates.length);
    for (const [i, candidate] of reference.candidates.entries()) {
      expect(probabilities[i], `candidate ${i}: probability`).toBeCloseTo(candidate.probability, 3);
    }
  }, 120_000);
});
