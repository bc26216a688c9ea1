/**
 * Issue 14, "disk and memory": a 2000-slice series (stacked copies) is processed or refused by a configured limit
 * with a reason, never killed for memory. The limit is checked from Orthanc's instance count and the first
 * instance's matrix, before anything is fetched or allocated; here the series is described by those counts only.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { DEFAULT_MAX_VOLUME_MIB, loadConfig } from "../../src/config.js";
import type { OrthancClient } from "../../src/orthanc/rest.js";
import { runJob } from "../../src/pipeline/runner.js";
import { openContext } from "../../src/service/service.js";
import { OPERATOR_TEST_PIPELINES } from "../helpers/ct-service.js";
import { StageError } from "../../src/stage-error.js";
import { checkVolumeSize, matrixOf, volumeMiB } from "../../src/pipeline/stages/volume-limit.js";

const stacked2000 = { instances: 2000, rows: 512, columns: 512 };

describe("the volume size limit", () => {
  it("refuses a 2000-slice 512x512 series over the limit, for good, naming its size, the limit and the setting", () => {
    expect(volumeMiB(stacked2000)).toBe(2000);
    let thrown: unknown;
    try {
      checkVolumeSize(stacked2000, 1024);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(StageError);
    const error = thrown as StageError;
    expect(error.stage).toBe("volume");
    expect(error.retryable).toBe(false);
    expect(error.message).toContain("2000 instances of 512x512");
    expect(error.message).toContain("2000 MiB float32 volume");
    expect(error.message).toContain("limit of 1024 MiB");
    expect(error.message).toContain("CT_ENHANCE_MAX_VOLUME_MB");
  });

  it("lets it through under a limit that holds it", () => {
    expect(() => checkVolumeSize(stacked2000, 2000)).not.toThrow();
    expect(() => checkVolumeSize({ instances: 261, rows: 512, columns: 512 }, 300)).not.toThrow();
  });

  it("reads the matrix from Orthanc's simplified tags", () => {
    expect(matrixOf({ Rows: "512", Columns: "512" })).toEqual({ rows: 512, columns: 512 });
    expect(matrixOf({ Rows: "512" })).toBeUndefined();
    expect(matrixOf({ Rows: "0", Columns: "512" })).toBeUndefined();
  });

  it("is set by CT_ENHANCE_MAX_VOLUME_MB, with a default of an eighth of the machine's memory", () => {
    expect(loadConfig(undefined, {}).limits.maxVolumeMiB).toBe(DEFAULT_MAX_VOLUME_MIB);
    expect(DEFAULT_MAX_VOLUME_MIB).toBeGreaterThanOrEqual(256);
    expect(loadConfig(undefined, { CT_ENHANCE_MAX_VOLUME_MB: "3000" }).limits.maxVolumeMiB).toBe(3000);
    expect(() => loadConfig(undefined, { CT_ENHANCE_MAX_VOLUME_MB: "0" })).toThrow(/limits\.maxVolumeMiB \(env CT_ENHANCE_MAX_VOLUME_MB\)/);
  });
});

describe("a job on a series over the limit", () => {
  it("fails for good in the volume stage, with the reason, without fetching a byte", async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), "ct-enhance-limit-"));
    const config = loadConfig(undefined, {
      CT_ENHANCE_DATA_DIR: dataDir, CT_ENHANCE_API_TOKEN: "t", CT_ENHANCE_MAX_VOLUME_MB: "1024", ...OPERATOR_TEST_PIPELINES,
    });
    const ctx = await openContext(config);
    const asked: string[] = [];
    // Orthanc as the runner sees it: a stack of 2000 instances of 512x512, described by its counts only.
    ctx.orthanc = {
      series: async (id: string) => ({ ID: id, Instances: Array.from({ length: 2000 }, (_, i) => `i${i}`), IsStable: true, LastUpdate: "" }),
      instanceTags: async (id: string) => (asked.push(id), { Rows: "512", Columns: "512" }),
      seriesIdOf: async () => undefined,
      dicomweb: () => {
        throw new Error("the series was fetched");
      },
    } as unknown as OrthancClient;
    try {
      const { job } = ctx.ledger.jobs.create({ sourceOrthancId: "big", sourceSeriesUid: "1.2.3.2000", studyUid: "1.2.3",
        pipeline: "ncct-syncta", modelId: "syncta-any-ct", modelVersion: "0.1.0" });
      const ended = await runJob(ctx, job);
      expect(ended).toMatchObject({ state: "failed", errorStage: "volume", errorRetryable: false });
      expect(ended.errorMessage).toContain("2000 instances of 512x512 make a 2000 MiB float32 volume, over the limit of 1024 MiB");
      expect(ended.errorMessage).toContain("CT_ENHANCE_MAX_VOLUME_MB");
      expect(asked).toEqual(["i0"]); // the first instance's matrix, nothing more
    } finally {
      await ctx.inference.close();
      ctx.ledger.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
