/**
 * The demo's real CT series: Debian's invesalius-examples head CT (Cranium.inv3) converted to DICOM by
 * src/tools/invesalius-series.ts. Skipped with a message where the package is not installed; in CI its absence
 * fails the run (scripts/install-system-deps.sh installs it).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { data } from "dcmjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assembleVolume } from "../../src/dicom/volume.js";
import { type ConversionResult, DEFAULT_INV3, SERIES_DESCRIPTION, convertInvesalius } from "../../src/tools/invesalius-series.js";
import { requireTools } from "../helpers/system-tools.js";

const INV3 = process.env.CT_ENHANCE_INVESALIUS_INV3 ?? DEFAULT_INV3;
const present = existsSync(INV3);
const required = Boolean(process.env.CI);

if (!present && !required) {
  console.warn(
    `skipping invesalius-series tests: ${INV3} not found (apt-get install invesalius-examples, ` +
      "or set CT_ENHANCE_INVESALIUS_INV3 to a Cranium.inv3)",
  );
}

describe.runIf(!present && required)("InVesalius example series (required)", () => {
  it("needs the invesalius-examples package", () => {
    throw new Error(`${INV3} not found: CI must install invesalius-examples (scripts/install-system-deps.sh)`);
  });
});

function read(file: string): Record<string, unknown> {
  const bytes = readFileSync(file);
  const dicom = data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer);
  return { ...data.DicomMetaDictionary.naturalizeDataset(dicom.dict), _meta: dicom.meta };
}

describe.runIf(present)("InVesalius example series", () => {
  let dir: string;
  let result: ConversionResult;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "ct-enhance-invesalius-"));
    result = convertInvesalius({ inv3: INV3, outDir: dir });
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("writes one CT Image Storage file per slice with the project's geometry", () => {
    expect(result.files).toHaveLength(108);
    expect(result.volume).toMatchObject({ slices: 108, rows: 256, columns: 256, modality: "CT" });
    const headers = result.files.map(read);
    const first = headers[0]!;
    expect(first).toMatchObject({
      SOPClassUID: "1.2.840.10008.5.1.4.1.1.2",
      Modality: "CT",
      ImageType: ["ORIGINAL", "PRIMARY", "AXIAL"],
      PatientName: [{ Alphabetic: "InVesalius^Cranium" }],
      PatientID: "INVESALIUS-CRANIUM",
      SeriesDescription: SERIES_DESCRIPTION,
      Rows: 256,
      Columns: 256,
      BitsAllocated: 16,
      PixelRepresentation: 1,
      RescaleType: "HU",
    });
    expect(first.ContrastBolusAgent).toBeUndefined();
    expect((first._meta as data.DicomDataset)["00020010"]?.Value).toEqual(["1.2.840.10008.1.2.1"]);
    expect(new Set(headers.map((h) => h.SeriesInstanceUID)).size).toBe(1);
    expect(new Set(headers.map((h) => h.FrameOfReferenceUID)).size).toBe(1);
    expect(new Set(headers.map((h) => h.SOPInstanceUID)).size).toBe(108);
    headers.forEach((h, k) => {
      expect(h.InstanceNumber).toBe(k + 1);
      expect((h.ImageOrientationPatient as number[]).map(Number)).toEqual([1, 0, 0, 0, 1, 0]);
      expect((h.PixelSpacing as number[]).map(Number)).toEqual([0.9570312, 0.9570312]);
      expect(Number(h.SliceThickness)).toBe(1.5);
      const position = (h.ImagePositionPatient as number[]).map(Number);
      expect(position[2]).toBeCloseTo(k * 1.5, 6); // first slice at the skull base, +z superior
      expect(Number(h.SliceLocation)).toBeCloseTo(k * 1.5, 6);
    });
  });

  it("keeps the HU values and puts the face at the top of each image", () => {
    const mid = read(result.files[54]!);
    const pixels = new Int16Array((mid.PixelData as ArrayBuffer[])[0]!);
    expect(pixels).toHaveLength(256 * 256);
    expect(pixels[0]).toBeLessThan(-900); // air in the corner
    let brain = 0;
    let bone = 0;
    for (const v of pixels) {
      if (v >= 20 && v <= 50) brain++;
      if (v > 700) bone++;
    }
    expect(brain / pixels.length).toBeGreaterThan(0.1);
    expect(bone / pixels.length).toBeGreaterThan(0.01);
    // InVesalius stores the rows bottom-up; written out, the head rest (a dense arc behind the occiput) must be in
    // the bottom rows and the top rows, in front of the forehead, only air.
    const rowMax = (r: number) => Math.max(...pixels.subarray(r * 256 + 32, r * 256 + 224));
    const rows = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => rowMax(from + i));
    expect(Math.max(...rows(0, 16))).toBeLessThan(-500);
    expect(Math.min(...rows(244, 256))).toBeGreaterThan(300);
  });

  it("is a volume the pipeline accepts", async () => {
    const volume = await assembleVolume(result.files.map((f) => new Uint8Array(readFileSync(f))));
    expect(volume.slices).toBe(108);
    expect(volume.sliceSpacing).toBeCloseTo(1.5, 6);
    expect(volume.imagePositionPatient[0]![2]).toBeCloseTo(0, 6);
    expect(volume.imagePositionPatient[107]![2]).toBeCloseTo(160.5, 6);
  });

  it("gives the same UIDs when converted again", () => {
    const again = mkdtempSync(join(tmpdir(), "ct-enhance-invesalius-"));
    try {
      const second = convertInvesalius({ inv3: INV3, outDir: again });
      expect(second.seriesInstanceUID).toBe(result.seriesInstanceUID);
      expect(second.studyInstanceUID).toBe(result.studyInstanceUID);
      expect(readFileSync(second.files[10]!).equals(readFileSync(result.files[10]!))).toBe(true);
    } finally {
      rmSync(again, { recursive: true, force: true });
    }
  });

  it.skipIf(!requireTools("dciodvfy"))("passes dciodvfy with no errors (first, middle, last slice)", () => {
    for (const file of [result.files[0]!, result.files[54]!, result.files[107]!]) {
      const run = spawnSync("dciodvfy", [file], { encoding: "utf8" });
      const report = `${run.stdout}${run.stderr}`;
      expect(report, file).toContain("CTImage");
      expect(report.split("\n").filter((line) => line.startsWith("Error")), file).toEqual([]);
    }
  });
});
