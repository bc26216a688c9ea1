/**
 * src/tools/output-checks-run.ts on a real chest (40 slices of LIDC-IDRI-0002) with outputs given as files in
 * ascending patient z: the input unchanged passes every check; the right chest wall's soft tissue brightened by 200 HU
 * on the 20 most inferior slices fails the connected-region check, on the slices the volume holds them at (the
 * volume's order is ascending z here too, so this does not tell the file's z mapping from none); a file of the wrong
 * size is refused with the sizes.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CtVolume } from "../../src/dicom/ct-volume.js";
import { assembleVolume } from "../../src/dicom/volume.js";
import type { OutputCheck } from "../../src/models/manifest.js";
import { runOutputChecks } from "../../src/tools/output-checks-run.js";
import { requireCtData, repoRoot } from "../helpers/ct-data.js";
import { contiguousSubset, type SeriesSubset } from "../helpers/ct-subset.js";

const haveChest = requireCtData("lidc-idri-0002-ncct");
const CHECKS: OutputCheck[] = [
  { measure: "tissueMeanChangeHu", min: -10, max: 10 },
  { measure: "tissueBrightenedSliceCm2", overHu: 100, max: 15 },
  { measure: "tissueBrightenedRegionMl", overHu: 100, max: 2 },
];

describe.runIf(haveChest)("output-checks-run on a real chest with a given output", () => {
  let subset: SeriesSubset;
  let volume: CtVolume;
  let work: string;
  /** Volume slice indices in ascending patient z. */
  let byZ: number[];
  beforeAll(async () => {
    subset = contiguousSubset("lidc-idri-0002-ncct", 40);
    volume = await assembleVolume(subset.files.map((f) => new Uint8Array(readFileSync(f))));
    byZ = volume.imagePositionPatient.map((p, k) => ({ z: p[2], k })).sort((a, b) => a.z - b.z).map((e) => e.k);
    work = mkdtempSync(path.join(tmpdir(), "ct-enhance-output-checks-"));
  }, 60_000);
  afterAll(() => {
    subset?.remove();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** The volume in ascending z, each slice changed by `change`, written as raw float32. */
  const writeOutput = (name: string, change: (slice: Float32Array, zIndex: number) => void): string => {
    const plane = volume.rows * volume.columns;
    const out = new Float32Array(volume.slices * plane);
    byZ.forEach((k, n) => {
      const slice = volume.hu.slice(k * plane, (k + 1) * plane);
      change(slice, n);
      out.set(slice, n * plane);
    });
    const file = path.join(work, name);
    writeFileSync(file, new Uint8Array(out.buffer));
    return file;
  };
  const run = (outputF32: string) => runOutputChecks({ series: subset.folder, model: "syncta-unet-small",
    models: path.join(repoRoot, "models"), outputF32, checks: CHECKS, threads: 1 });

  it("passes the input unchanged, and fails the chest wall lit on the inferior half, on the volume's slices", async () => {
    const same = await run(writeOutput("same.f32", () => undefined));
    expect(same.within, same.reasons.join("; ")).toBe(true);
    expect(same.output).toBe("file");
    expect(same.verdicts.map((v) => [v.value, v.passed])).toEqual([[0, true], [0, true], [0, true]]);

    // The patient's right lateral chest wall: 5-35 mm in from the skin at the middle row, 30 mm above and below it.
    const { rows, columns } = volume;
    const [rowMm, columnMm] = volume.pixelSpacing;
    const mid = Math.round(rows / 2);
    const middle = volume.hu.subarray(byZ[20]! * rows * columns, (byZ[20]! + 1) * rows * columns);
    let skin = 0;
    while (skin < columns - 1 && middle[mid * columns + skin]! < -300) skin += 1;
    const lit = writeOutput("wall.f32", (slice, n) => {
      if (n >= 20) return;
      for (let r = mid - Math.round(30 / rowMm); r <= mid + Math.round(30 / rowMm); r += 1) {
        for (let c = skin + Math.round(5 / columnMm); c <= skin + Math.round(35 / columnMm); c += 1) {
          const v = slice[r * columns + c]!;
          if (v > -20 && v < 120) slice[r * columns + c] = v + 200;
        }
      }
    });
    const verdicts = (await run(lit)).verdicts;
    const region = verdicts[2]!;
    expect(region.passed, JSON.stringify(verdicts)).toBe(false);
    expect(region.value).toBeGreaterThan(2);
    const inferior = byZ.slice(0, 20);
    expect(region.text).toContain(`(slices ${Math.min(...inferior) + 1}-${Math.max(...inferior) + 1} of 40)`);
  }, 120_000);

  it("refuses an output file whose size is not the series'", async () => {
    const file = path.join(work, "short.f32");
    writeFileSync(file, new Uint8Array(16));
    await expect(run(file)).rejects.toThrow(`${file} holds 4 values; the series has 40 x 512 x 512`);
  }, 60_000);
});
