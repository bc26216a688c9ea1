/**
 * `ct-enhance eval` with a series in Orthanc (the built CLI, a real Orthanc): 24 contiguous slices of LIDC-IDRI-0002
 * uploaded, then compared by Orthanc series ID and by SeriesInstanceUID against the same slices on disk.
 */
import { execFile } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ctSeriesFiles, repoRoot, requireCtData, filesInPositionOrder } from "../helpers/ct-data.js";
import { startOrthanc, type TestOrthanc } from "../helpers/orthanc.js";
import { requireOrthanc } from "../helpers/system-tools.js";

const run = promisify(execFile);
const ready = requireCtData("lidc-idri-0002-ncct") && requireOrthanc();


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
      [path.join(repoRoot, "dist", "cli.js"), "eval", "--reference", reference, "--candidate", candidate, "--json", "--config", configFile],
      { env: { ...process.env, CT_ENHANCE_DATA_DIR: root } },
    );
    return JSON.parse(stdout) as { psnrDb: number | string; nmae: number; ssim: number; reference: { source: string; slices: number } };
  };

  it("compares an Orthanc series (by ID, then by SeriesInstanceUID) with the same slices on disk: identical", async () => {
    const byId = await evalCli(seriesId, path.join(root, "slices"));
    expect(byId).toMatchObject({ psnrDb: "Infinity", nmae: 0, reference: { source: `orthanc:${seriesId}`, slices: 24 } });
    expect(byId.ssim).toBeCloseTo(1, 12);
    const series = await orthanc.rest<{ MainDicomTags: { SeriesInstanceUID: string } }>(`/series/${seriesId}`);
    const byUid = await evalCli(path.join(root, "slices"), series.MainDicomTags.SeriesInstanceUID);
    expect(byUid).toMatchObject({ psnrDb: "Infinity", nmae: 0 });
  }, 90_000);

  it("says when Orthanc has no such series", async () => {
    await expect(evalCli("1.2.3.4.5", path.join(root, "slices"))).rejects.toThrow(/Orthanc has no series with SeriesInstanceUID 1\.2\.3\.4\.5/);
  }, 60_000);
});
