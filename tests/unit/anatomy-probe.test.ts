/**
 * The anatomy probe on synthetic volumes whose anatomy is known (tests/helpers/phantom.ts): regions, lungs (volume,
 * both sides, apex and base inside or cut), the blood pool with and without contrast, the noise, and a stacked
 * head-chest-abdomen volume.
 */
import { describe, expect, it } from "vitest";
import { volumeSlab } from "../../src/dicom/ct-volume.js";
import { probedSlab, probeVolume } from "../../src/measure/anatomy-probe.js";
import { OutputMeasures } from "../../src/measure/output-measures.js";
import { phantomLungMl, phantomVolume } from "../helpers/phantom.js";

describe("anatomy probe", () => {
  it("finds a chest: both lungs, apex to base inside, blood pool of a non-contrast scan, the noise that was added", async () => {
    const { probe } = await probeVolume(phantomVolume({ parts: { chest: 100 }, bloodHu: 40, noiseSd: 15 }));
    expect(probe.regions).toEqual(["chest"]);
    expect(probe.lungs.volumeMl).toBeGreaterThan(phantomLungMl(100) * 0.85);
    expect(probe.lungs.volumeMl).toBeLessThan(phantomLungMl(100) * 1.15);
    expect(Math.abs(probe.lungs.leftMl - probe.lungs.rightMl)).toBeLessThan(probe.lungs.volumeMl * 0.05);
    expect(probe.lungs).toMatchObject({ apexInside: true, baseInside: true });
    expect(probe.bloodPoolHu).toBeGreaterThan(30);
    expect(probe.bloodPoolHu).toBeLessThan(55);
    expect(probe.contrast).toBe("non-contrast");
    expect(probe.noiseHu).toBeGreaterThan(13);
    expect(probe.noiseHu).toBeLessThan(17);
  });

  it("reads contrast from the blood pool's HU, whatever the header says", async () => {
    const { probe } = await probeVolume(phantomVolume({ parts: { chest: 60 }, bloodHu: 320, noiseSd: 15 }));
    expect(probe.contrast).toBe("contrast");
    expect(probe.bloodPoolHu).toBeGreaterThan(290);
    expect(probe.bloodPoolHu).toBeLessThan(340);
  });

  it("tells a head (no lungs, no blood pool in front of a spine) and an abdomen apart from a chest", async () => {
    const head = (await probeVolume(phantomVolume({ parts: { head: 60 }, noiseSd: 5 }))).probe;
    expect(head.regions).toEqual(["head"]);
    expect(head.lungs.volumeMl).toBe(0);
    expect(head.contrast).toBe("unknown");
    const abdomen = (await probeVolume(phantomVolume({ parts: { abdomen: 60 }, noiseSd: 5 }))).probe;
    expect(abdomen.regions).toEqual(["abdomen"]);
    expect(abdomen.lungs.volumeMl).toBe(0);
    expect(abdomen.contrast).toBe("non-contrast");
  });

  it("sees every region of a stacked volume, and where the lungs start and end", async () => {
    const { probe } = await probeVolume(phantomVolume({ parts: { abdomen: 50, chest: 100, head: 60 }, noiseSd: 10 }));
    expect(probe.regions).toEqual(["head", "chest", "abdomen"]);
    expect(probe.lungs.firstSlice).toBeGreaterThanOrEqual(50);
    expect(probe.lungs.lastSlice).toBeLessThan(150);
    expect(probe.coverageMm.head).toBeGreaterThanOrEqual(150);
    expect(probe.lungs).toMatchObject({ apexInside: true, baseInside: true });
  });

  it("says when the lungs are cut: a scan starting below the apex", async () => {
    const volume = phantomVolume({ parts: { abdomen: 40, chest: 100 }, noiseSd: 5 });
    // Keep the lower 110 slices only: the lungs reach the top slice.
    const { probe } = await probeVolume(volumeSlab(volume, 0, 109));
    expect(probe.lungs).toMatchObject({ apexInside: false, baseInside: true });
  });

  it("cuts a slab's probe from the whole volume's masks, renumbering the sampled slices, and the checks measure on it", async () => {
    const volume = phantomVolume({ parts: { abdomen: 50, chest: 100, head: 60 }, bloodHu: 40, noiseSd: 10 });
    const probed = await probeVolume(volume);
    const [first, last] = [40, 159];
    const slab = probedSlab(probed, first, last);
    const plane = probed.coarse.rows * probed.coarse.columns;
    expect(slab.coarse.slices).toBe(120);
    expect(Array.from(slab.anatomy.lungs)).toEqual(Array.from(probed.anatomy.lungs.subarray(first * plane, (last + 1) * plane)));
    expect(Array.from(slab.anatomy.body)).toEqual(Array.from(probed.anatomy.body.subarray(first * plane, (last + 1) * plane)));
    const sampled = probed.bloodAndNoise.noiseSlices.filter((k) => k >= first && k <= last).map((k) => k - first);
    expect(slab.bloodAndNoise.noiseSlices).toEqual(sampled);
    expect(sampled.length).toBeGreaterThan(3);
    expect(slab.bloodAndNoise.bloodPoolSlices.every((b) => b.slice >= 0 && b.slice < 120)).toBe(true);
    expect(slab.bloodAndNoise.bloodPoolSlices.length).toBeGreaterThan(0);
    // The output checks on the slab volume: an unchanged output changes nothing and keeps the noise.
    const input = volumeSlab(volume, first, last);
    const checks = new OutputMeasures(input, slab, [
      { measure: "tissueMeanChangeHu", min: -1, max: 1 },
      { measure: "noiseRatio", max: 1 },
    ]);
    checks.addSlices(0, input.hu.slice());
    expect(checks.verdicts().map((v) => v.value)).toEqual([0, 1]);
    expect(() => probedSlab(probed, 100, 300)).toThrow(RangeError);
  });
});
