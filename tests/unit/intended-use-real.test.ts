/**
 * Intended use on real series (no Orthanc: the volumes are assembled from the files): the demo's head CT is skipped by
 * every chest model for its anatomy; the head stacked over LIDC-IDRI-0002 (one volume, the chest's grid) is processed
 * on its chest slab only, never on the head; and the same chest smoothed and sharpened (as softer and sharper kernels
 * would reconstruct it) gets the same decisions from the chest models as the original. Not from the denoiser: its
 * low-dose-by-noise rule cannot tell a sharper kernel from a lower dose (README, "How a series is chosen").
 */
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { type CtVolume, type Vector3 } from "../../src/dicom/ct-volume.js";
import { assembleVolume } from "../../src/dicom/volume.js";
import { probeVolume } from "../../src/measure/anatomy-probe.js";
import type { ModelManifest } from "../../src/models/manifest.js";
import { ModelRegistry } from "../../src/models/registry.js";
import { judgeIntendedUse } from "../../src/pipeline/intended-use.js";
import { ctSeriesFolder, headCtFolder, repoRoot, requireCtData } from "../helpers/ct-data.js";
import { inPlaneKernel } from "../../src/eval/in-plane-kernel.js";

const haveChest = requireCtData("lidc-idri-0002-ncct");
const head = await headCtFolder();
const readFolder = (folder: string) => assembleVolume(readdirSync(folder).filter((f) => f.endsWith(".dcm")).map((f) => new Uint8Array(readFileSync(path.join(folder, f)))));

let manifests: ModelManifest[];
beforeAll(async () => {
  manifests = (await ModelRegistry.load(path.join(repoRoot, "models"))).list().map((m) => m.manifest);
});
const verdicts = async (volume: CtVolume) => {
  const probed = await probeVolume(volume);
  return { probe: probed.probe, byModel: Object.fromEntries(manifests.map((m) => [m.id, judgeIntendedUse(m, volume, probed)])) };
};

/** The head resampled (nearest neighbour) onto the chest's pixel and slice spacing, stacked above the chest. */
function stackHeadOverChest(chest: CtVolume, headCt: CtVolume): { volume: CtVolume; firstHeadSlice: number } {
  const plane = chest.rows * chest.columns;
  const headSlices = Math.round((headCt.slices * headCt.sliceSpacing) / chest.sliceSpacing);
  const slices = chest.slices + headSlices;
  const hu = new Float32Array(new SharedArrayBuffer(slices * plane * 4)).fill(-1024);
  hu.set(chest.hu);
  const scale = chest.pixelSpacing[0] / headCt.pixelSpacing[0];
  for (let k = 0; k < headSlices; k += 1) {
    const source = Math.min(headCt.slices - 1, Math.round((k * chest.sliceSpacing) / headCt.sliceSpacing));
    for (let r = 0; r < chest.rows; r += 1) {
      for (let c = 0; c < chest.columns; c += 1) {
        const sr = Math.round((r - chest.rows / 2) * scale + headCt.rows / 2);
        const sc = Math.round((c - chest.columns / 2) * scale + headCt.columns / 2);
        if (sr < 0 || sc < 0 || sr >= headCt.rows || sc >= headCt.columns) continue;
        hu[(chest.slices + k) * plane + r * chest.columns + c] = headCt.hu[source * headCt.rows * headCt.columns + sr * headCt.columns + sc]!;
      }
    }
  }
  const top = chest.imagePositionPatient.at(-1)!;
  const headPositions = Array.from({ length: headSlices }, (_, k): Vector3 => [top[0], top[1], top[2] + (k + 1) * chest.sliceSpacing]);
  return {
    firstHeadSlice: chest.slices,
    volume: {
      ...chest,
      slices,
      hu,
      imagePositionPatient: [...chest.imagePositionPatient, ...headPositions],
      sourceSlices: [...chest.sourceSlices, ...headPositions.map((_, k) => ({ sopClassUID: "1.2.840.10008.5.1.4.1.1.2", sopInstanceUID: `2.25.${k + 1}` }))],
      sliceHeaders: [...chest.sliceHeaders, ...headPositions.map(() => chest.sliceHeaders[0]!)],
    },
  };
}

describe.runIf(head)("the demo's head CT and intended use", () => {
  it("is skipped by every chest model, for its anatomy", async () => {
    const { probe, byModel } = await verdicts(await readFolder(head!));
    expect(probe.regions).toEqual(["head"]);
    for (const [id, verdict] of Object.entries(byModel)) {
      expect(verdict.within, id).toBe(false);
      if (!verdict.within) expect(verdict.reasons[0], id).toMatch(/^no lungs in the volume \(0 ml\), the volume shows head/);
    }
  });
});

describe.runIf(haveChest)("LIDC-IDRI-0002 and intended use", () => {
  let chest: CtVolume;
  beforeAll(async () => {
    chest = await readFolder(ctSeriesFolder("lidc-idri-0002-ncct"));
  }, 60_000);

  it.runIf(head)("stacked under the head CT: processed on its chest slab only, never on the head", async () => {
    const { volume, firstHeadSlice } = stackHeadOverChest(chest, await readFolder(head!));
    const { probe, byModel } = await verdicts(volume);
    expect(probe.regions).toEqual(expect.arrayContaining(["head", "chest"]));
    for (const id of ["syncta-unet-small", "nodule-detector-small"]) {
      const verdict = byModel[id]!;
      expect(verdict.within, id).toBe(true);
      if (!verdict.within || !verdict.slab) throw new Error(`${id}: a chest slab was expected`);
      expect(verdict.slab.last, id).toBeLessThan(firstHeadSlice);
      expect(verdict.slab.first, id).toBeLessThanOrEqual(probe.lungs.firstSlice);
    }
  }, 60_000);

  it("gets the same decisions from the chest models smoothed and sharpened as reconstructed", async () => {
    const original = await verdicts(chest);
    const decisions = (v: Awaited<ReturnType<typeof verdicts>>) =>
      Object.fromEntries(["syncta-unet-small", "nodule-detector-small"].map((id) => [id, v.byModel[id]!.within]));
    expect(decisions(original)).toEqual({ "syncta-unet-small": true, "nodule-detector-small": true });
    for (const [name, a] of [["smoothed", 0.25], ["sharpened", -0.25]] as const) {
      const variant = await verdicts(inPlaneKernel(chest, a));
      expect(variant.probe.regions, name).toEqual(original.probe.regions);
      expect(variant.probe.contrast, name).toBe(original.probe.contrast);
      expect(Math.abs(variant.probe.lungs.volumeMl - original.probe.lungs.volumeMl), name).toBeLessThan(original.probe.lungs.volumeMl * 0.02);
      expect(decisions(variant), name).toEqual(decisions(original));
    }
  }, 120_000);
});
