/**
 * `ct-enhance eval` as the built CLI: with a series in a real Orthanc (24 contiguous slices of LIDC-IDRI-0002
 * uploaded, then compared by Orthanc series ID and by SeriesInstanceUID against the same slices on disk), and on a
 * folder of Implicit VR copies, whose reading made dcmjs print "Invalid vr type" lines to stderr, once per file.
 */
import { data } from "dcmjs";
import { execFile } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ctSeriesFiles, repoRoot, requireCtData, filesInPositionOrder } from "../helpers/ct-data.js";
import { startOrthanc, type TestOrthanc } from "../helpers/orthanc.js";
import { requireOrthanc } from "../helpers/system-tools.js";

const run = promisify(execFile);
const ctReady = requireCtData("lidc-idri-0002-ncct");
const ready = ctReady && requireOrthanc();
const cli = path.join(repoRoot, "dist", "cli.js");


describe.runIf(ready)("ct-enhance eval reads a series from Orthanc (WADO-RS)", () => {
  const root = mkdtempSync(path.join(tmpdir(), "ct-eval-orthanc-"));
  let orthanc: TestOrthanc;
  let seriesId: string;
  let configFile: string;

  beforeAll(async () => {
    mkdirSync(path.join(root, "slices"));
    for (const file of filesInPositionOrder(ctSeriesFiles("lidc-idri-0002-ncct")).slice(100, 124)) {
      copyFileSync(file, path.join(root, "slices", path.basename(file)));
    }
    orthanc = await startOrthanc();
    [seriesId] = (await orthanc.uploadFolder(path.join(root, "slices"))) as [string];
    configFile = path.join(root, "config.json");
    writeFileSync(configFile, JSON.stringify({ orthanc: { url: orthanc.url, username: orthanc.username, password: orthanc.password } }));
  });

  afterAll(async () => {
    await orthanc?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  const evalCli = async (reference: string, candidate: string) => {
    const { stdout } = await run(
      process.execPath,
      [cli, "eval", "--reference", reference, "--candidate", candidate, "--json", "--config", configFile],
      { env: { ...process.env, CT_ENHANCE_DATA_DIR: root } },
    );
    return JSON.parse(stdout) as {
      perVolume: { psnrDb: number | string; nmae: number; ssim: number };
      perSlice: { psnrDb: number | string; ssim: number };
      reference: { source: string; slices: number };
    };
  };

  it("compares an Orthanc series (by ID, then by SeriesInstanceUID) with the same slices on disk: identical", async () => {
    const byId = await evalCli(seriesId, path.join(root, "slices"));
    expect(byId).toMatchObject({
      perVolume: { psnrDb: "Infinity", nmae: 0 },
      perSlice: { psnrDb: "Infinity" },
      reference: { source: `orthanc:${seriesId}`, slices: 24 },
    });
    expect(byId.perVolume.ssim).toBeCloseTo(1, 12);
    const series = await orthanc.rest<{ MainDicomTags: { SeriesInstanceUID: string } }>(`/series/${seriesId}`);
    const byUid = await evalCli(path.join(root, "slices"), series.MainDicomTags.SeriesInstanceUID);
    expect(byUid).toMatchObject({ perVolume: { psnrDb: "Infinity", nmae: 0 } });
  }, 90_000);

  it("says when Orthanc has no such series", async () => {
    await expect(evalCli("1.2.3.4.5", path.join(root, "slices"))).rejects.toThrow(/Orthanc has no series with SeriesInstanceUID 1\.2\.3\.4\.5/);
  }, 60_000);
});

/**
 * An Implicit VR Little Endian copy of a slice with Data Set Trailing Padding after PixelData: dcmjs's dictionary
 * then guesses VRs ("xs" for SmallestImagePixelValue, "ox" for PixelData, read again in full because PixelData is
 * not last) and used to print "Invalid vr type xs - using US" / "ox - using OW" for every file.
 */
function implicitVrCopy(bytes: Buffer): Uint8Array {
  const dicom = data.DicomMessage.readFile(new Uint8Array(bytes).buffer);
  dicom.meta["00020010"] = { vr: "UI", Value: ["1.2.840.10008.1.2"] };
  dicom.dict["FFFCFFFC"] = { vr: "OB", Value: [new Uint8Array(4).buffer] };
  return new Uint8Array(dicom.write());
}

describe.runIf(ctReady)("ct-enhance eval keeps stderr free of dcmjs's parser noise", () => {
  const root = mkdtempSync(path.join(tmpdir(), "ct-eval-stderr-"));

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("reads 24 Implicit VR slices of LIDC-IDRI-0002 with nothing on stderr, and finds them identical to the originals", async () => {
    mkdirSync(path.join(root, "explicit"));
    mkdirSync(path.join(root, "implicit"));
    for (const file of filesInPositionOrder(ctSeriesFiles("lidc-idri-0002-ncct")).slice(100, 124)) {
      copyFileSync(file, path.join(root, "explicit", path.basename(file)));
      writeFileSync(path.join(root, "implicit", path.basename(file)), implicitVrCopy(readFileSync(file)));
    }
    const { stdout, stderr } = await run(process.execPath, [
      cli, "eval", "--reference", path.join(root, "explicit"), "--candidate", path.join(root, "implicit"), "--json",
    ]);
    expect(stderr).not.toMatch(/Invalid vr type/);
    expect(stderr).toBe("");
    expect(JSON.parse(stdout)).toMatchObject({ perVolume: { nmae: 0, psnrDb: "Infinity" }, candidate: { slices: 24 } });
  }, 60_000);
});
