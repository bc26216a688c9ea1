/**
 * Intended use judged on measured anatomy (phantoms) with the shipped models' manifests: a chest model skips a head
 * and an abdomen with the anatomy in the reason, takes a chest, runs only on its regions' slab of a stacked volume, and
 * skips a contrast scan whose header says nothing; the denoiser takes a noisy series only when its header gives no
 * CTDIvol, and never without a measured noise within the levels it was trained on (its noise-level input).
 */
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { probeVolume } from "../../src/measure/anatomy-probe.js";
import { ModelRegistry } from "../../src/models/registry.js";
import { ModelManifest } from "../../src/models/manifest.js";
import { judgeIntendedUse } from "../../src/pipeline/intended-use.js";
import { phantomVolume } from "../helpers/phantom.js";

let manifests: Record<string, ModelManifest>;
beforeAll(async () => {
  const models = await ModelRegistry.load(path.resolve(import.meta.dirname, "../../models"));
  manifests = Object.fromEntries(models.list().map((m) => [m.manifest.id, m.manifest]));
});

async function judge(modelId: string, volume: ReturnType<typeof phantomVolume>) {
  return judgeIntendedUse(manifests[modelId]!, volume, await probeVolume(volume));
}

describe("intended use", () => {
  it("is required of every manifest: one without it, or without output checks, is refused with the key named", () => {
    const { intendedUse: _use, outputChecks: _checks, ...bare } = manifests["syncta-unet-small"]!;
    const parsed = ModelManifest.safeParse(bare);
    expect(parsed.success).toBe(false);
    if (!parsed.success) expect(parsed.error.issues.map((i) => i.path.join("."))).toEqual(["intendedUse", "outputChecks"]);
  });

  it("skips a head for every chest model, saying there are no lungs and what the model is for", async () => {
    const head = phantomVolume({ parts: { head: 60 }, noiseSd: 5 });
    for (const id of ["syncta-unet-small", "nodule-detector-small", "denoise-ffdnet-small"]) {
      const verdict = await judge(id, head);
      expect(verdict.within, id).toBe(false);
      if (verdict.within) continue;
      expect(verdict.reasons[0]).toMatch(/^no lungs in the volume \(0 ml\), the volume shows head \(head \d+ mm\)/);
      expect(verdict.reasons.at(-1)).toMatch(new RegExp(`^${id} is for .*chest`));
    }
  });

  it("takes a non-contrast chest whole, and only the slab of its regions (with a margin) of a head-chest-abdomen stack", async () => {
    const chest = await judge("syncta-unet-small", phantomVolume({ parts: { chest: 100 }, noiseSd: 10 }));
    expect(chest).toMatchObject({ within: true, slab: undefined });
    const stacked = phantomVolume({ parts: { abdomen: 50, chest: 100, head: 60 }, noiseSd: 10 });
    // The lungs span slices ~54..145; 20 mm of margin is 8 slices of 2.5 mm. The detector is for the chest only.
    const detector = await judge("nodule-detector-small", stacked);
    if (!detector.within || !detector.slab) throw new Error("a slab was expected");
    expect(detector.slab.first).toBeGreaterThanOrEqual(40);
    expect(detector.slab.first).toBeLessThanOrEqual(50);
    expect(detector.slab.last).toBeGreaterThanOrEqual(148);
    expect(detector.slab.last).toBeLessThan(160); // the head (slices 150..209) is not processed
    expect(detector.notes.join(" ")).toMatch(/also shows head \d+ mm, abdomen \d+ mm\)/);
    // Syn-CTA v2 is for chest and abdomen: from the first slice to the chest's top, never the head.
    const syncta = await judge("syncta-unet-small", stacked);
    if (!syncta.within || !syncta.slab) throw new Error("a slab was expected");
    expect(syncta.slab.first).toBe(0);
    expect(syncta.slab.last).toBeGreaterThanOrEqual(148);
    expect(syncta.slab.last).toBeLessThan(160);
    expect(syncta.notes.join(" ")).toMatch(/\(chest\+abdomen; the volume also shows head \d+ mm\)/);
  });

  it("leaves out a chest's short neck beyond the margin, though too short to count as a region of its own", async () => {
    // 12 slices of 2.5 mm of neck: the probe measures 40 mm above the lungs (as LIDC-IDRI-0002's 36 mm), under the 50 mm
    // a region needs, so the series is a chest; the model is not for the neck: the slab ends 20 mm (8 slices) above
    // the lungs' last slice.
    const chestAndNeck = phantomVolume({ parts: { chest: 100, head: 12 }, noiseSd: 10 });
    const syncta = await judge("syncta-unet-small", chestAndNeck);
    if (!syncta.within || !syncta.slab) throw new Error("a slab was expected");
    const { probe } = await probeVolume(chestAndNeck);
    expect(probe.regions).toEqual(["chest"]);
    expect(syncta.slab.first).toBe(0);
    expect(syncta.slab.last).toBe(Math.min(probe.slices - 1, probe.lungs.lastSlice + 8));
    expect(syncta.slab.last).toBeLessThan(probe.slices - 1);
    expect(syncta.notes.join(" ")).toMatch(/the volume also shows head \d+ mm\)/);
  });

  it("skips a contrast scan for the non-contrast model by the blood pool, though the header names no agent", async () => {
    const verdict = await judge("syncta-unet-small", phantomVolume({ parts: { chest: 60 }, bloodHu: 320, noiseSd: 10 }));
    expect(verdict.within).toBe(false);
    if (!verdict.within) expect(verdict.reasons[0]).toMatch(/^contrast \(blood pool \d+ HU\), not non-contrast/);
  });

  it("takes a noisy chest for the denoiser by its measured noise, and not when the header gives a normal CTDIvol", async () => {
    // The phantom (384 px of 0.9 mm) is outside the geometry v2 was trained on (512 px of 0.65-0.85 mm): the shipped
    // manifest says so; its noise rules are tested on a copy whose geometry takes the phantom.
    const noisy = phantomVolume({ parts: { chest: 100 }, noiseSd: 35 });
    const shipped = await judge("denoise-ffdnet-small", noisy);
    expect(shipped.within).toBe(false);
    if (!shipped.within) expect(shipped.reasons).toEqual(expect.arrayContaining(["pixel spacing 0.9 mm, not 0.65-0.85 mm", "matrix 384x384, not 512-512 px"]));
    const denoiser = manifests["denoise-ffdnet-small"]!;
    const anyGeometry = { ...denoiser, intendedUse: { ...denoiser.intendedUse, pixelSpacingMm: { min: 0.4, max: 1 }, matrix: { min: 256, max: 1024 } } };
    const judgeAny = async (volume: ReturnType<typeof phantomVolume>) => judgeIntendedUse(anyGeometry, volume, await probeVolume(volume));
    const byNoise = await judgeAny(noisy);
    expect(byNoise.within).toBe(true);
    if (byNoise.within) expect(byNoise.notes.join(" ")).toMatch(/low dose by measured noise 3\d(\.\d)? HU/);
    const quiet = await judgeAny(phantomVolume({ parts: { chest: 100 }, noiseSd: 12 }));
    expect(quiet.within).toBe(false);
    noisy.sliceHeaders = noisy.sliceHeaders.map((h) => ({ ...h, CTDIvol: 8.2 }));
    const byHeader = await judgeAny(noisy);
    expect(byHeader.within).toBe(false);
    if (!byHeader.within) expect(byHeader.reasons[0]).toBe("CTDIvol 8.2 mGy: not a low dose (at most 3 mGy)");
  });

  it("skips a series for the noise-level denoiser when its noise, one of the model's inputs, is unmeasured or untrained", async () => {
    const denoiser = manifests["denoise-ffdnet-small"]!;
    expect(denoiser.input.noiseLevel).toMatchObject({ channel: 1, source: "measured-noise" });
    const anyGeometry = { ...denoiser, intendedUse: { ...denoiser.intendedUse, pixelSpacingMm: { min: 0.4, max: 1 }, matrix: { min: 256, max: 1024 } } };
    const volume = phantomVolume({ parts: { chest: 100 }, noiseSd: 35 });
    volume.sliceHeaders = volume.sliceHeaders.map((h) => ({ ...h, CTDIvol: 1.5 })); // low dose by header: noise unchecked
    const probed = await probeVolume(volume);
    const unmeasured = judgeIntendedUse(anyGeometry, volume, { ...probed, probe: { ...probed.probe, noiseHu: undefined } });
    expect(unmeasured.within).toBe(false);
    if (!unmeasured.within) expect(unmeasured.reasons[0]).toMatch(/^the image noise could not be measured .* the model takes it as an input/);
    const max = denoiser.input.noiseLevel!.trainedNoiseHu!.max!;
    const loud = judgeIntendedUse(anyGeometry, volume, { ...probed, probe: { ...probed.probe, noiseHu: max + 20 } });
    expect(loud.within).toBe(false);
    if (!loud.within) expect(loud.reasons[0]).toMatch(/outside the noise levels the model was trained on/);
    expect(judgeIntendedUse(anyGeometry, volume, probed).within).toBe(true);
  });

  it("names the geometry it refuses", async () => {
    const thick = phantomVolume({ parts: { chest: 100 }, noiseSd: 10 });
    thick.sliceHeaders = thick.sliceHeaders.map((h) => ({ ...h, SliceThickness: 5 }));
    const verdict = await judge("nodule-detector-small", thick);
    expect(verdict.within).toBe(false);
    if (!verdict.within) expect(verdict.reasons).toContain("slice thickness 5 mm, not 0.5-2.5 mm");
  });
});
