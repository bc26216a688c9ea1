/**
 * `ct-enhance eval` on folders of real CT (24 contiguous slices of LIDC-IDRI-0002): a series against itself, against
 * a copy with known Gaussian noise added to the stored pixel values, and against a series that lies elsewhere.
 */
import { data } from "dcmjs";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { evaluateSeries, formatReport, runEvalCommand, type EvalReport } from "../../src/eval/eval-command.js";
import { DEFAULT_HU_RANGE } from "../../src/eval/image-metrics.js";
import { ctSeriesFiles, requireCtData, filesInPositionOrder } from "../helpers/ct-data.js";

const ready = requireCtData("lidc-idri-0002-ncct");
const NOISE_SIGMA_HU = 20;
const noOrthanc = () => {
  throw new Error("this test reads folders only; Orthanc must not be asked");
};


/** Standard normal deviates from a seeded MINSTD generator (Box-Muller). */
function gaussian(seed: number): () => number {
  let state = seed;
  const uniform = () => (state = (state * 48271) % 2147483647) / 2147483647;
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** Copies a Part-10 file with round(N(0, sigma)) added to every stored value (slope 1, so HU change alike). */
function addNoise(bytes: Buffer, noise: () => number, sigma: number): Uint8Array {
  const dicom = data.DicomMessage.readFile(new Uint8Array(bytes).buffer);
  const header = data.DicomMetaDictionary.naturalizeDataset(dicom.dict);
  expect(Number(header.RescaleSlope)).toBe(1);
  const element = dicom.dict["7FE00010"]!;
  const signed = Number(header.PixelRepresentation) === 1;
  const pixels = signed ? new Int16Array(element.Value![0] as ArrayBuffer) : new Uint16Array(element.Value![0] as ArrayBuffer);
  const [lo, hi] = signed ? [-32768, 32767] : [0, 65535];
  for (let i = 0; i < pixels.length; i += 1) pixels[i] = Math.min(hi, Math.max(lo, pixels[i]! + Math.round(sigma * noise())));
  return new Uint8Array(dicom.write());
}

describe.skipIf(!ready)("ct-enhance eval on DICOM folders (LIDC-IDRI-0002, 24 slices)", () => {
  const root = mkdtempSync(path.join(tmpdir(), "ct-eval-"));
  const folder = (name: string) => path.join(root, name);

  beforeAll(() => {
    const files = filesInPositionOrder(ctSeriesFiles("lidc-idri-0002-ncct"));
    const noise = gaussian(2024);
    for (const [name, range] of [["reference", [100, 124]], ["shifted", [101, 125]], ["short", [100, 123]]] as const) {
      mkdirSync(folder(name));
      for (const file of files.slice(range[0], range[1])) copyFileSync(file, path.join(folder(name), path.basename(file)));
    }
    mkdirSync(folder("noisy"));
    for (const file of files.slice(100, 124)) {
      writeFileSync(path.join(folder("noisy"), path.basename(file)), addNoise(readFileSync(file), noise, NOISE_SIGMA_HU));
    }
    writeFileSync(path.join(folder("noisy"), "README.txt"), "not DICOM: ignored by the loader\n");
  });

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const evaluate = (candidate: string, bodyMaskThresholdHu?: number) =>
    evaluateSeries({
      reference: folder("reference"),
      candidate: folder(candidate),
      range: DEFAULT_HU_RANGE,
      orthanc: noOrthanc,
      ...(bodyMaskThresholdHu === undefined ? {} : { bodyMaskThresholdHu }),
    });

  it("gives NMAE 0, PSNR Infinity and SSIM 1 for a series against itself, and says so", async () => {
    const report = await evaluate("reference");
    expect(report).toMatchObject({ nmae: 0, maeHu: 0, psnrDb: "Infinity", voxels: 24 * 512 * 512, ssimSlices: 24 });
    expect(report.ssim).toBeCloseTo(1, 12);
    const text = formatReport(report);
    expect(text).toMatch(/HU range \[-1024, 3071\]/);
    expect(text).toMatch(/PSNR Infinity/);
  }, 60_000);

  it("measures Gaussian noise of sigma 20 HU inside the body: PSNR 20 log10(4095 / sigma), NMAE sigma sqrt(2/pi) / 4095", async () => {
    const report = await evaluate("noisy", -500);
    if (report.mask.kind !== "body") throw new Error("expected a body mask");
    // Rounding the noise to whole stored values adds 1/12 to its variance.
    const expectedPsnr = 10 * Math.log10(4095 ** 2 / (NOISE_SIGMA_HU ** 2 + 1 / 12));
    const expectedMae = NOISE_SIGMA_HU * Math.sqrt(2 / Math.PI);
    console.log(`noisy copy, body mask (${report.voxels} voxels): PSNR ${(report.psnrDb as number).toFixed(3)} dB ` +
      `(expected ${expectedPsnr.toFixed(3)}), MAE ${report.maeHu.toFixed(3)} HU (expected ${expectedMae.toFixed(3)}), SSIM ${report.ssim.toFixed(4)}`);
    expect(report.voxels).toBeGreaterThan(24 * 50_000); // a chest, not a sliver
    expect(report.voxels).toBeLessThan(24 * 512 * 512 * 0.8); // and not the air around it
    expect(report.psnrDb).toBeCloseTo(expectedPsnr, 1); // within 0.05 dB
    expect(report.maeHu).toBeCloseTo(expectedMae, 1);
    expect(report.nmae).toBeCloseTo(report.maeHu / 4095, 12);
    expect(report.ssim).toBeGreaterThan(0.5);
    expect(report.ssim).toBeLessThan(0.999);
  }, 60_000);

  it("refuses series that do not share one geometry, naming the difference", async () => {
    await expect(evaluate("shifted")).rejects.toThrow(/slice 1 \(in position order\) is at ImagePositionPatient .* mm apart/);
    await expect(evaluate("short")).rejects.toThrow(/the reference has 24 slices, the candidate 23/);
  }, 60_000);

  it("runs as a command: --hu-min -1024 style options, --body-mask, --json", async () => {
    const written: string[] = [];
    const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    try {
      const argv = ["--reference", folder("reference"), "--candidate", folder("noisy"), "--hu-min", "-200", "--hu-max", "300", "--body-mask", "--json"];
      expect(await runEvalCommand(argv)).toBe(0);
    } finally {
      spy.mockRestore();
    }
    const report = JSON.parse(written.join("")) as EvalReport;
    expect(report.huRange).toEqual({ huMin: -200, huMax: 300 });
    expect(report.mask).toMatchObject({ kind: "body", thresholdHu: -500 });
    // R = 500 instead of 4095: about 18 dB less for the same noise; voxels clipped on both sides (lung, bone) count
    // as equal, so PSNR can only be higher and the MAE lower than the unclipped noise gives.
    const unclippedPsnr = 10 * Math.log10(500 ** 2 / (NOISE_SIGMA_HU ** 2 + 1 / 12));
    expect(report.psnrDb).toBeGreaterThan(unclippedPsnr - 0.05);
    expect(report.psnrDb).toBeLessThan(unclippedPsnr + 6);
    expect(report.maeHu).toBeLessThan(NOISE_SIGMA_HU * Math.sqrt(2 / Math.PI));
    expect(report.nmae).toBeCloseTo(report.maeHu / 500, 12);
    await expect(runEvalCommand(["--reference", folder("reference")])).rejects.toThrow(/needs --reference and --candidate/);
    await expect(runEvalCommand(["--reference", "x", "--candidate", "y", "--hu-min", "5", "--hu-max", "5"])).rejects.toThrow(/must exceed/);
  }, 60_000);
});
