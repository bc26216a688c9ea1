/**
 * `ct-enhance eval` on folders of real CT (16 contiguous slices of LIDC-IDRI-0002): a series against itself, against
 * a copy with known Gaussian noise added to the stored pixel values, against a copy whose soft tissue is brightened
 * by a known amount, and against series that lie elsewhere; the command's options, JSON shape and per-slice CSV.
 */
import { data, log } from "dcmjs";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DCMJS_VR_GUESS_LOGGER } from "../../src/dicom/dcmjs-log.js";
import { evaluateSeries, runEvalCommand, type EvalReport } from "../../src/eval/eval-command.js";
import { parseEvalOptions, parseRegion } from "../../src/eval/eval-options.js";
import { formatReport } from "../../src/eval/eval-report.js";
import { DEFAULT_HU_RANGE } from "../../src/eval/image-metrics.js";
import { ctSeriesFiles, requireCtData, filesInPositionOrder } from "../helpers/ct-data.js";

const ready = requireCtData("lidc-idri-0002-ncct");
const SLICES = 16;
const NOISE_SIGMA_HU = 20;
const BRIGHTENING_HU = 50;
const noOrthanc = () => {
  throw new Error("this test reads folders only; Orthanc must not be asked");
};

/** Standard normal deviates from a seeded MINSTD generator (Box-Muller). */
function gaussian(seed: number): () => number {
  let state = seed;
  const uniform = () => (state = (state * 48271) % 2147483647) / 2147483647;
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** Copies a Part-10 file with change(stored value, HU) added to every stored value (slope 1, so HU change alike). */
function changePixels(bytes: Buffer, change: (hu: number) => number): Uint8Array {
  const dicom = data.DicomMessage.readFile(new Uint8Array(bytes).buffer);
  const header = data.DicomMetaDictionary.naturalizeDataset(dicom.dict);
  expect(Number(header.RescaleSlope)).toBe(1);
  const intercept = Number(header.RescaleIntercept);
  const element = dicom.dict["7FE00010"]!;
  const signed = Number(header.PixelRepresentation) === 1;
  const pixels = signed ? new Int16Array(element.Value![0] as ArrayBuffer) : new Uint16Array(element.Value![0] as ArrayBuffer);
  const [lo, hi] = signed ? [-32768, 32767] : [0, 65535];
  for (let i = 0; i < pixels.length; i += 1) pixels[i] = Math.min(hi, Math.max(lo, pixels[i]! + change(pixels[i]! + intercept)));
  return new Uint8Array(dicom.write());
}

describe("eval options", () => {
  it("reads --region NAME=LO:HI as a half-open HU interval of the reference, an empty end unbounded", () => {
    expect(parseRegion("bloodpool=150:600")).toEqual({ name: "bloodpool", loHu: 150, hiHu: 600 });
    expect(parseRegion("tissue=-100:150")).toEqual({ name: "tissue", loHu: -100, hiHu: 150 });
    expect(parseRegion("bone=700:")).toEqual({ name: "bone", loHu: 700, hiHu: Infinity });
    expect(parseRegion("lung=:-500")).toEqual({ name: "lung", loHu: -Infinity, hiHu: -500 });
    expect(() => parseRegion("bloodpool=600:150")).toThrow(/HI must exceed LO/);
    expect(() => parseRegion("bloodpool=a:150")).toThrow(/'a' is not a number of HU/);
    expect(() => parseRegion("150:600")).toThrow(/is not NAME=LO:HI/);
  });

  it("defaults to the uniform 7x7 SSIM, all voxels, no regions; refuses what it cannot measure, naming the option", () => {
    const options = parseEvalOptions(["--reference", "a", "--candidate", "b"]);
    expect(options).toMatchObject({ ssimWindow: "uniform7", excludeBackground: false, regions: [], range: DEFAULT_HU_RANGE });
    expect(options).not.toHaveProperty("bodyMaskThresholdHu");
    expect(parseEvalOptions(["--reference", "a", "--candidate", "b", "--body-threshold", "-300"])).toMatchObject({ bodyMaskThresholdHu: -300 });
    expect(parseEvalOptions(["--help"])).toBe("help");
    const both = ["--reference", "a", "--candidate", "b"];
    expect(() => parseEvalOptions([...both, "--ssim-window", "gaussian7"])).toThrow(/--ssim-window 'gaussian7' is not one of uniform7, gaussian11/);
    expect(() => parseEvalOptions([...both, "--region", "a=1:2", "--region", "a=3:4"])).toThrow(/--region a is given twice/);
    expect(() => parseEvalOptions(["--reference", "a"])).toThrow(/needs --reference and --candidate[\s\S]*REFERENCE HU/);
    expect(() => parseEvalOptions([...both, "--hu-min", "5", "--hu-max", "5"])).toThrow(/must exceed/);
  });

  it("silences dcmjs's 'Invalid vr type' logger once the DICOM reader is loaded (Implicit VR files print it per file)", () => {
    expect(log.getLogger(DCMJS_VR_GUESS_LOGGER).getLevel()).toBe(5); // loglevel's SILENT
    expect(log.getLevel()).toBeLessThan(5); // and only that logger
  });
});

describe.skipIf(!ready)(`ct-enhance eval on DICOM folders (LIDC-IDRI-0002, ${SLICES} slices)`, () => {
  const root = mkdtempSync(path.join(tmpdir(), "ct-eval-"));
  const folder = (name: string) => path.join(root, name);

  beforeAll(() => {
    const files = filesInPositionOrder(ctSeriesFiles("lidc-idri-0002-ncct"));
    const [first, last] = [100, 100 + SLICES];
    for (const [name, range] of [["reference", [first, last]], ["shifted", [first + 1, last + 1]], ["short", [first, last - 1]]] as const) {
      mkdirSync(folder(name));
      for (const file of files.slice(range[0], range[1])) copyFileSync(file, path.join(folder(name), path.basename(file)));
    }
    const noise = gaussian(2024);
    const soft = (hu: number) => (hu >= -100 && hu < 150 ? BRIGHTENING_HU : 0);
    for (const [name, change] of [["noisy", () => Math.round(NOISE_SIGMA_HU * noise())], ["brightened", soft]] as const) {
      mkdirSync(folder(name));
      for (const file of files.slice(first, last)) writeFileSync(path.join(folder(name), path.basename(file)), changePixels(readFileSync(file), change));
    }
    writeFileSync(path.join(folder("noisy"), "README.txt"), "not DICOM: ignored by the loader\n");
  });

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const evaluate = (candidate: string, more: { bodyMaskThresholdHu?: number; excludeBackground?: boolean; regions?: string[] } = {}) =>
    evaluateSeries({
      reference: folder("reference"),
      candidate: folder(candidate),
      range: DEFAULT_HU_RANGE,
      ssimWindow: "uniform7",
      orthanc: noOrthanc,
      excludeBackground: more.excludeBackground ?? false,
      regions: (more.regions ?? []).map(parseRegion),
      ...(more.bodyMaskThresholdHu === undefined ? {} : { bodyMaskThresholdHu: more.bodyMaskThresholdHu }),
    });

  it("gives NMAE 0, PSNR Infinity and SSIM 1 for a series against itself, per volume and per slice, and says so", async () => {
    const { report, slices } = await evaluate("reference");
    expect(report.perVolume).toMatchObject({ nmae: 0, maeHu: 0, psnrDb: "Infinity", voxels: SLICES * 512 * 512 });
    expect(report.perSlice).toMatchObject({ nmae: 0, psnrDb: "Infinity", slices: SLICES, identicalSlices: SLICES, ssimSlices: SLICES });
    expect(report.perVolume.ssim).toBeCloseTo(1, 12);
    expect(slices).toHaveLength(SLICES);
    const text = formatReport(report);
    expect(text).toMatch(/HU range \[-1024, 3071\]/);
    expect(text).toMatch(/SSIM: skimage, uniform 7x7 window/);
    expect(text).toMatch(/per volume .*PSNR Infinity/);
    expect(text).toMatch(new RegExp(`per slice \\(mean over ${SLICES} slices; ${SLICES} identical`));
  }, 30_000);

  it("measures noise of sigma 20 HU in the body: PSNR 20 log10(4095 / sigma), MAE sigma sqrt(2/pi), every region alike", async () => {
    const { report } = await evaluate("noisy", { bodyMaskThresholdHu: -500, regions: ["soft=-100:150", "lung=-1000:-500"] });
    // Rounding the noise to whole stored values adds 1/12 to its variance.
    const expectedPsnr = 10 * Math.log10(4095 ** 2 / (NOISE_SIGMA_HU ** 2 + 1 / 12));
    const expectedMae = NOISE_SIGMA_HU * Math.sqrt(2 / Math.PI);
    const v = report.perVolume;
    expect(report.counted).toEqual({ bodyMask: { thresholdHu: -500 }, excludeBackground: false });
    expect(v.voxels).toBeGreaterThan(SLICES * 50_000); // a chest, not a sliver
    expect(v.voxels).toBeLessThan(SLICES * 512 * 512 * 0.8); // and not the air around it
    expect(v.psnrDb).toBeCloseTo(expectedPsnr, 1); // within 0.05 dB
    expect(v.maeHu).toBeCloseTo(expectedMae, 1);
    expect(v.nmae).toBeCloseTo(v.maeHu! / 4095, 12);
    expect(Math.abs(v.meanDifferenceHu!)).toBeLessThan(0.2);
    expect(report.perSlice.psnrDb).toBeCloseTo(expectedPsnr, 1); // the same noise on every slice
    expect(report.perVolume.ssim).toBeGreaterThan(0.5);
    expect(report.perVolume.ssim).toBeLessThan(0.999);
    for (const region of report.regions) {
      expect(region.voxels).toBeGreaterThan(SLICES * 5_000);
      expect(region.maeHu).toBeCloseTo(expectedMae, 0);
      expect(Math.abs(region.meanDifferenceHu!)).toBeLessThan(0.5);
    }
  }, 30_000);

  it("tells a brightened organ from noise: the region's mean difference is the brightening, the rest is untouched", async () => {
    const { report } = await evaluate("brightened", { regions: ["soft=-100:150", "lung=-1000:-500", "bright=150:"] });
    const [soft, lung, bright] = report.regions;
    expect(soft).toMatchObject({ name: "soft", loHu: -100, hiHu: 150, maeHu: BRIGHTENING_HU, meanDifferenceHu: BRIGHTENING_HU });
    expect(soft!.psnrDb).toBeCloseTo(20 * Math.log10(4095 / BRIGHTENING_HU), 10);
    expect(lung).toMatchObject({ maeHu: 0, psnrDb: "Infinity", meanDifferenceHu: 0 });
    expect(bright).toMatchObject({ loHu: 150, hiHu: null, maeHu: 0 });
    // The whole volume dilutes it: the pooled MAE is the brightening times the soft tissue's share of the voxels.
    expect(report.perVolume.maeHu).toBeCloseTo((BRIGHTENING_HU * soft!.voxels) / report.perVolume.voxels, 10);
    expect(formatReport(report)).toMatch(/region soft \(reference -100 <= HU < 150\): \d+ voxels, NMAE .*mean difference \+50\.00 HU/);
  }, 30_000);

  it("refuses series that do not share one geometry, naming the difference", async () => {
    await expect(evaluate("shifted")).rejects.toThrow(/slice 1 \(in position order\) is at ImagePositionPatient .* mm apart/);
    await expect(evaluate("short")).rejects.toThrow(new RegExp(`the reference has ${SLICES} slices, the candidate ${SLICES - 1}`));
  }, 30_000);

  it("runs as a command: --hu-min -1024 style options, --exclude-background, --region, --json, --per-slice-csv", async () => {
    const written: string[] = [];
    const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    const csv = path.join(root, "slices.csv");
    try {
      const argv = ["--reference", folder("reference"), "--candidate", folder("noisy"), "--hu-min", "-1024", "--hu-max", "3071",
        "--exclude-background", "--region", "soft=-100:150", "--ssim-window", "gaussian11", "--per-slice-csv", csv, "--json"];
      expect(await runEvalCommand(argv)).toBe(0);
    } finally {
      spy.mockRestore();
    }
    const report = JSON.parse(written.join("")) as EvalReport;
    expect(Object.keys(report)).toEqual(["reference", "candidate", "huRange", "ssimWindow", "counted", "perVolume", "perSlice", "regions"]);
    expect(report).toMatchObject({ huRange: { huMin: -1024, huMax: 3071 }, ssimWindow: "gaussian11", counted: { bodyMask: null, excludeBackground: true } });
    expect(Object.keys(report.perVolume).sort()).toEqual(["maeHu", "meanDifferenceHu", "nmae", "psnrDb", "ssim", "ssimPixels", "voxels"]);
    expect(Object.keys(report.perSlice).sort()).toEqual(["identicalSlices", "maeHu", "nmae", "psnrDb", "slices", "ssim", "ssimSlices"]);
    // LIDC's outside-the-scan-circle padding (-3024 HU) is background; the air inside the circle is not.
    expect(report.perVolume.voxels).toBeLessThan(SLICES * 512 * 512 * 0.85);
    expect(report.perVolume.voxels).toBeGreaterThan(SLICES * 512 * 512 * 0.6);
    expect(report.perVolume.ssimPixels).toBe(SLICES * 502 * 502); // the whole slice inside the 5-pixel border
    expect(report.regions).toEqual([expect.objectContaining({ name: "soft", loHu: -100, hiHu: 150 })]);
    const lines = readFileSync(csv, "utf8").trimEnd().split("\n");
    expect(lines[0]).toBe("slice,instance_number,z_mm,voxels,nmae,mae_hu,psnr_db,mean_difference_hu,ssim");
    expect(lines).toHaveLength(SLICES + 1);
    const rows = lines.slice(1).map((line) => line.split(",").map(Number));
    expect(rows.map((r) => r[0])).toEqual(Array.from({ length: SLICES }, (_, k) => k + 1));
    expect(rows.every((r, k) => k === 0 || r[2]! > rows[k - 1]![2]!)).toBe(true); // position order
    expect(rows.reduce((sum, r) => sum + r[3]!, 0)).toBe(report.perVolume.voxels);
    const meanOf = (column: number) => rows.reduce((sum, r) => sum + r[column]!, 0) / rows.length;
    expect(meanOf(4)).toBeCloseTo(report.perSlice.nmae, 12);
    expect(meanOf(6)).toBeCloseTo(report.perSlice.psnrDb as number, 10);
    expect(meanOf(8)).toBeCloseTo(report.perSlice.ssim, 12);
  }, 30_000);
});
