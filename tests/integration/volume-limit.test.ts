/**
 * Issue 14, "disk and memory", through the built service: a series over the configured volume limit
 * (CT_ENHANCE_MAX_VOLUME_MB) is refused, for good, with the size, the limit and the setting, and nothing is stored.
 * Here a 24-slice 512x512 subset (24 MiB as float32) meets a 16 MiB limit: the same check a 2000-slice stack meets
 * under the default (tests/unit/volume-limit.test.ts), without uploading 2000 instances.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireCtData } from "../helpers/ct-data.js";
import { contiguousSubset, type SeriesSubset } from "../helpers/ct-subset.js";
import { OPERATOR_TEST_PIPELINES, startService, type TestService, waitFor } from "../helpers/ct-service.js";
import { startOrthanc, type TestOrthanc } from "../helpers/orthanc.js";
import { requireOrthanc } from "../helpers/system-tools.js";

const ready = requireCtData("lidc-idri-0002-ncct") && requireOrthanc();

interface Job { id: number; state: string; errorStage: string | null; errorMessage: string | null; errorRetryable: boolean | null; attempts: number }

describe.runIf(ready)("volume limit (real Orthanc, built service)", () => {
  let orthanc: TestOrthanc;
  let service: TestService;
  let subset: SeriesSubset;

  beforeAll(async () => {
    subset = contiguousSubset("lidc-idri-0002-ncct", 24);
    orthanc = await startOrthanc({ stableAgeSeconds: 2 });
    service = await startService(orthanc, { ...OPERATOR_TEST_PIPELINES, CT_ENHANCE_RECONCILE_CRON: "off", CT_ENHANCE_MAX_VOLUME_MB: "16" });
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
    service?.remove();
    await orthanc?.stop();
    subset?.remove();
  });

  it("fails the job for good, naming the size, the limit and the setting, and stores nothing", async () => {
    await orthanc.uploadFolder(subset.folder);
    const job = await waitFor("the job to end", async () => {
      const jobs = await service.api<Job[]>("/jobs");
      return jobs.find((j) => j.state === "failed" || j.state === "done");
    }, 90_000, service);
    expect(job).toMatchObject({ state: "failed", errorStage: "volume", errorRetryable: false, attempts: 1 });
    expect(job.errorMessage).toContain("24 instances of 512x512 make a 24 MiB float32 volume, over the limit of 16 MiB");
    expect(job.errorMessage).toContain("CT_ENHANCE_MAX_VOLUME_MB");
    expect((await orthanc.rest<string[]>("/series")).length).toBe(1); // the source only
  }, 120_000);
});
