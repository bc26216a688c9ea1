/**
 * The output checks measured on a phantom, for outputs whose effect is known: a synthetic CTA that brightens only the
 * aorta passes; one that brightens all soft tissue fails with its figure; a smoothing denoiser lowers the noise and
 * keeps the tissue's mean; the findings count against its cap.
 */
import { describe, expect, it } from "vitest";
import { probeVolume } from "../../src/measure/anatomy-probe.js";
import { OutputMeasures } from "../../src/measure/output-measures.js";
import type { OutputCheck } from "../../src/models/manifest.js";
import { PHANTOM, PHANTOM_HEART, phantomVolume } from "../helpers/phantom.js";

const SYNTHESIS: OutputCheck[] = [
  { measure: "bodyVoxelsChangedPercent", overHu: 100, max: 8 },
  { measure: "tissueMeanChangeHu", min: -10, max: 10 },
];

async function measure(checks: OutputCheck[], change: (hu: Float32Array, k: number) => Float32Array, heart = false) {
  const volume = phantomVolume({ parts: { chest: 40 }, bloodHu: 40, noiseSd: 15, heart });
  const measures = new OutputMeasures(volume, await probeVolume(volume), checks);
  const plane = PHANTOM.rows * PHANTOM.columns;
  // Streamed in batches of 8, as the worker sends them.
  for (let first = 0; first < volume.slices; first += 8) {
    const count = Math.min(8, volume.slices - first);
    const values = new Float32Array(count * plane);
    for (let n = 0; n < count; n += 1) {
      values.set(change(volume.hu.slice((first + n) * plane, (first + n + 1) * plane), first + n), n * plane);
    }
    measures.addSlices(first, values);
  }
  return measures.verdicts();
}

const isAorta = (i: number): boolean => {
  const centre = (PHANTOM.columns - 1) / 2;
  const x = ((i % PHANTOM.columns) - centre) * PHANTOM.pixelMm;
  const y = (Math.floor(i / PHANTOM.columns) - centre) * PHANTOM.pixelMm;
  return (x - 12) ** 2 + (y - 25) ** 2 <= 144;
};

describe("output checks", () => {
  it("pass a synthetic CTA that brightens the aorta only", async () => {
    const verdicts = await measure(SYNTHESIS, (hu) => hu.map((v, i) => (isAorta(i) ? v + 300 : v)));
    expect(verdicts.every((v) => v.passed), JSON.stringify(verdicts)).toBe(true);
    expect(verdicts[1]!.value).toBe(0);
  });

  it("pass one that brightens the heart where it bulges under the left lung: the mediastinum is taken row by row", async () => {
    const checks: OutputCheck[] = [...SYNTHESIS, { measure: "tissueBrightenedPercent", overHu: 100, max: 1 }];
    const inHeart = (i: number): boolean => {
      const centre = (PHANTOM.columns - 1) / 2;
      const x = ((i % PHANTOM.columns) - centre) * PHANTOM.pixelMm;
      const y = (Math.floor(i / PHANTOM.columns) - centre) * PHANTOM.pixelMm;
      return (x - PHANTOM_HEART.x) ** 2 + (y - PHANTOM_HEART.y) ** 2 <= PHANTOM_HEART.radius ** 2;
    };
    // The phantom draws its heart on the slices with lungs (the 2nd to the 39th of 40).
    const verdicts = await measure(checks, (hu, k) => hu.map((v, i) => (k >= 1 && k <= 38 && (inHeart(i) || isAorta(i)) ? v + 300 : v)), true);
    expect(verdicts.every((v) => v.passed), JSON.stringify(verdicts)).toBe(true);
    // Only the heart's edge, where it meets the lung at the coarse grid's resolution, is still counted (a slice-wide
    // column range between the lungs counted +7.7 HU and 2.6% here).
    expect(Math.abs(verdicts[1]!.value)).toBeLessThan(3);
    expect(verdicts[2]!.value).toBeLessThan(1);
  });

  it("fail one that brightens all soft tissue, with the figure and the limit", async () => {
    const verdicts = await measure(SYNTHESIS, (hu) => hu.map((v) => (v > -20 && v < 120 ? v + 150 : v)));
    expect(verdicts.map((v) => v.passed)).toEqual([false, false]);
    expect(verdicts[1]!.value).toBeGreaterThan(140);
    expect(verdicts[1]!.text).toMatch(/^soft tissue outside the blood pool changed by \+1\d\d(\.\d)? HU on average \(limit -10\.\.10 HU\)$/);
    expect(verdicts[0]!.text).toMatch(/% of body voxels changed by more than 100 HU \(limit 8%\)$/);
  });

  it("fail one that brightens a blob of soft tissue only, which the tissue's mean dilutes", async () => {
    const checks: OutputCheck[] = [...SYNTHESIS, { measure: "tissueBrightenedPercent", overHu: 100, max: 1 }];
    // A 20 mm disk of paraspinal soft tissue, far from the aorta, raised by 200 HU: a false "enhancing lesion".
    const centre = (PHANTOM.columns - 1) / 2;
    const inBlob = (i: number): boolean => {
      const x = ((i % PHANTOM.columns) - centre) * PHANTOM.pixelMm;
      const y = (Math.floor(i / PHANTOM.columns) - centre) * PHANTOM.pixelMm;
      return (x + 45) ** 2 + (y - 78) ** 2 <= 100;
    };
    const verdicts = await measure(checks, (hu) => hu.map((v, i) => (inBlob(i) && v > -20 && v < 120 ? v + 200 : v)));
    const [body, mean, blob] = verdicts;
    expect(body!.passed && mean!.passed, JSON.stringify(verdicts)).toBe(true);
    expect(blob!.passed, JSON.stringify(verdicts)).toBe(false);
    expect(blob!.text).toMatch(/^\d+(\.\d)?% of soft tissue outside the blood pool brightened by more than 100 HU \(limit 1%\)$/);
    const aortaOnly = await measure(checks, (hu) => hu.map((v, i) => (isAorta(i) ? v + 300 : v)));
    expect(aortaOnly[2]).toMatchObject({ value: 0, passed: true });
  });

  it("fail one that brightens a region a few slices tall, which the share of the whole volume dilutes", async () => {
    const checks: OutputCheck[] = [...SYNTHESIS, { measure: "tissueBrightenedPercent", overHu: 100, max: 2 },
      { measure: "tissueBrightenedSliceCm2", overHu: 100, max: 10 }];
    // A 25 mm disk of soft tissue raised by 200 HU on three slices of forty (7.5 mm tall): a false "enhancing mass".
    const centre = (PHANTOM.columns - 1) / 2;
    const inRegion = (i: number): boolean => {
      const x = ((i % PHANTOM.columns) - centre) * PHANTOM.pixelMm;
      const y = (Math.floor(i / PHANTOM.columns) - centre) * PHANTOM.pixelMm;
      return (x + 45) ** 2 + (y - 70) ** 2 <= 625;
    };
    const verdicts = await measure(checks, (hu, k) => hu.map((v, i) => (k >= 20 && k <= 22 && inRegion(i) && v > -20 && v < 120 ? v + 200 : v)));
    const [body, mean, share, slice] = verdicts;
    expect(body!.passed && mean!.passed && share!.passed, JSON.stringify(verdicts)).toBe(true);
    expect(slice!.passed, JSON.stringify(verdicts)).toBe(false);
    expect(slice!.value).toBeGreaterThan(10);
    expect(slice!.value).toBeLessThanOrEqual(Math.PI * 2.5 ** 2 + 1);
    expect(slice!.text).toMatch(/^\d+(\.\d)? cm2 of soft tissue outside the blood pool brightened by more than 100 HU on one slice \(slice 2[123] of 40\) \(limit 10 cm2\)$/);
    const aortaOnly = await measure(checks, (hu, k) => hu.map((v, i) => (k >= 20 && k <= 22 && isAorta(i) ? v + 300 : v)));
    expect(aortaOnly[3]).toMatchObject({ value: 0, passed: true });
  });

  it("fail one that brightens a thin region down many slices, which no single slice shows, with its volume", async () => {
    const checks: OutputCheck[] = [...SYNTHESIS, { measure: "tissueBrightenedPercent", overHu: 100, max: 2 },
      { measure: "tissueBrightenedSliceCm2", overHu: 100, max: 15 }, { measure: "tissueBrightenedRegionMl", overHu: 100, max: 10 }];
    // A 7 mm radius cylinder of chest wall lateral to a lung raised by 200 HU on all forty slices (a muscle lit along its length:
    // 1.54 cm2 x 10 cm = 15.4 ml), and a second one elsewhere on the first ten only (3.8 ml), not touching it.
    const centre = (PHANTOM.columns - 1) / 2;
    const inDisk = (i: number, cx: number, cy: number): boolean => {
      const x = ((i % PHANTOM.columns) - centre) * PHANTOM.pixelMm;
      const y = (Math.floor(i / PHANTOM.columns) - centre) * PHANTOM.pixelMm;
      return (x - cx) ** 2 + (y - cy) ** 2 <= 49;
    };
    const lit = (hu: Float32Array, k: number) =>
      hu.map((v, i) => ((inDisk(i, -130, 0) || (k < 10 && inDisk(i, 130, 0))) && v > -20 && v < 120 ? v + 200 : v));
    const verdicts = await measure(checks, lit);
    const [body, mean, share, slice, region] = verdicts;
    expect(body!.passed && mean!.passed && share!.passed && slice!.passed, JSON.stringify(verdicts)).toBe(true);
    expect(region!.passed, JSON.stringify(verdicts)).toBe(false);
    expect(region!.value).toBeGreaterThan(15.4 * 0.85);
    expect(region!.value).toBeLessThan(15.4 * 1.15);
    expect(region!.text).toMatch(/^\d+(\.\d)? ml of soft tissue outside the blood pool brightened by more than 100 HU in one connected region not joining the blood pool \(slices 1-40 of 40\) \(limit 10 ml\)$/);
    // Only the second cylinder: its own volume, the first ten slices.
    const second = await measure(checks, (hu, k) => hu.map((v, i) => (k < 10 && inDisk(i, 130, 0) && v > -20 && v < 120 ? v + 200 : v)));
    expect(second[4]!.passed, JSON.stringify(second)).toBe(true);
    expect(second[4]!.value).toBeGreaterThan(3.85 * 0.85);
    expect(second[4]!.value).toBeLessThan(3.85 * 1.15);
    expect(second[4]!.text).toContain("(slices 1-10 of 40)");
    const aortaOnly = await measure(checks, (hu) => hu.map((v, i) => (isAorta(i) ? v + 300 : v)));
    expect(aortaOnly[4]).toMatchObject({ value: 0, passed: true });
    // A vessel leaving the aorta and running back past the spine, 65 mm out, beyond the 30 mm disk and the lungs (a
    // renal artery, a subclavian) joins the blood pool's brightening: the pool's own, not a region of tissue on its own.
    const leaving = (i: number): boolean => {
      const x = ((i % PHANTOM.columns) - centre) * PHANTOM.pixelMm;
      const y = (Math.floor(i / PHANTOM.columns) - centre) * PHANTOM.pixelMm;
      return Math.abs(x - 30) <= 4 && y >= 25 && y <= 90;
    };
    const branch = await measure(checks, (hu) => hu.map((v, i) => (isAorta(i) || (leaving(i) && v > -20 && v < 120) ? v + 300 : v)));
    expect(branch[4], JSON.stringify(branch)).toMatchObject({ value: 0, passed: true });
    // The same vessel's part behind the lungs (posterior of 70 mm), cut off from the aorta: a region of its own.
    const cutOff = (i: number): boolean => leaving(i) && (Math.floor(i / PHANTOM.columns) - centre) * PHANTOM.pixelMm >= 70;
    const cut = await measure(checks, (hu) => hu.map((v, i) => (isAorta(i) || (cutOff(i) && v > -20 && v < 120) ? v + 300 : v)));
    expect(cut[4]!.passed, JSON.stringify(cut)).toBe(false);
  });

  it("see a smoothing denoiser lower the noise and keep the tissue's mean", async () => {
    const smooth = (hu: Float32Array): Float32Array => {
      const out = hu.slice();
      const w = PHANTOM.columns;
      for (let i = w + 1; i < hu.length - w - 1; i += 1) {
        out[i] = (hu[i]! * 4 + hu[i - 1]! + hu[i + 1]! + hu[i - w]! + hu[i + w]!) / 8;
      }
      return out;
    };
    const verdicts = await measure([{ measure: "tissueMeanChangeHu", min: -5, max: 5 }, { measure: "noiseRatio", max: 0.9 }], smooth);
    expect(verdicts.every((v) => v.passed), JSON.stringify(verdicts)).toBe(true);
    expect(verdicts[1]!.value).toBeLessThan(0.7);
  });

  it("count findings against the cap", async () => {
    const volume = phantomVolume({ parts: { chest: 20 } });
    const measures = new OutputMeasures(volume, await probeVolume(volume), [{ measure: "findings", max: 20 }]);
    measures.setFindings(22, 3);
    expect(measures.verdicts()[0]).toMatchObject({ passed: false, value: 22 });
    expect(measures.verdicts()[0]!.text).toBe("22 finding(s) in the lungs (limit 20: more means the detector misfired); 3 outside the lungs dropped");
  });
});
