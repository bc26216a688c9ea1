/**
 * The second stage of a two-stage detector (Detector v2): every candidate the probability map gave (its components
 * above the map's threshold, big enough, in the lungs) is scored by the manifest's candidate classifier on a patch
 * around its centroid (candidate-patches.ts). Those scored below the classifier's threshold are dropped; the others
 * become findings whose confidence is the classifier's probability, the most probable first, numbered again.
 */
import type { Finding } from "../dicom/finding.js";
import { turnTaker } from "../event-loop.js";
import type { InferenceService, WorkerDeadline } from "./inference.js";
import { maskCentroid, samplePatches, type SampledVolume } from "./candidate-patches.js";
import { type FindingRules, numbered } from "./probability-findings.js";
import type { RegisteredModel } from "./registry.js";

/** Voxels copied between two looks at the clock. */
const VOXELS_PER_CLOCK_CHECK = 1 << 18;

/**
 * The HU the patches are sampled from, kept before the probability map is written over the volume: as 16-bit
 * integers (half a float volume) when every voxel is one, as CT values nearly always are; else as they are.
 */
export async function huForPatches(hu: Float32Array): Promise<Int16Array | Float32Array> {
  const compact = new Int16Array(hu.length);
  const takeTurn = turnTaker();
  for (let start = 0; start < hu.length; start += VOXELS_PER_CLOCK_CHECK) {
    await takeTurn();
    const end = Math.min(hu.length, start + VOXELS_PER_CLOCK_CHECK);
    for (let i = start; i < end; i++) {
      const value = hu[i]!;
      if (!Number.isInteger(value) || value < -32768 || value > 32767) return hu.slice();
      compact[i] = value;
    }
  }
  return compact;
}

export interface ClassifiedCandidates {
  /** The candidates at or above the classifier's threshold, confidence = its probability, most probable first. */
  kept: Finding[];
  /** How many candidates it scored. */
  candidates: number;
}

export async function classifyCandidates(
  inference: Pick<InferenceService, "classify">,
  model: RegisteredModel,
  volume: SampledVolume,
  candidates: readonly Finding[],
  rules: Pick<FindingRules, "trackingNamespace" | "trackingLabel">,
  deadline?: WorkerDeadline,
): Promise<ClassifiedCandidates> {
  const classifier = model.manifest.candidateClassifier;
  if (!classifier) throw new Error(`model ${model.manifest.id} has no candidate classifier`);
  if (candidates.length === 0) return { kept: [], candidates: 0 };
  const centres = candidates.map((c) => maskCentroid(c, volume.columns));
  const patches = await samplePatches(volume, centres, classifier);
  const { probabilities } = await inference.classify(model, patches, candidates.length, deadline ? { deadline } : {});
  const scored = candidates.map((candidate, i) => {
    const probability = probabilities[i]!;
    if (!(probability >= 0 && probability <= 1)) {
      throw new Error(`the candidate classifier of ${model.manifest.id} gave ${probability} for a candidate; a probability in [0, 1] is expected`);
    }
    return { ...candidate, probability };
  });
  const kept = scored.filter((c) => c.probability >= classifier.threshold).sort((a, b) => b.probability - a.probability);
  return { kept: numbered(kept, rules), candidates: candidates.length };
}
