/**
 * Issue 14, "disk and memory", on a really full disk: the built service's data folder (the ledger, its WAL, the
 * spool) is a 48 MiB tmpfs, which the test fills with a ballast file until the kernel answers ENOSPC, then sends a
 * 20-slice real series (LIDC-IDRI-0002 under new UIDs). The ledger cannot record the change: /health says
 * `degraded` (200) and /ready 503, each naming SQLITE_FULL and what to do; no job is created and the feed's cursor
 * stays behind Orthanc's last change. Once the ballast is removed the service goes on by itself: the series is
 * processed once, one whole output, and the cursor reaches Orthanc's last change. No seam: the kernel refuses the
 * writes (tests/unit/ledger-write-failure.test.ts covers the read-only case through `refuseWrites`).
 * Then the spool alone on a full disk (a 16 MiB tmpfs mounted on <data>/spool, the ledger on its own disk): the
 * derived series cannot be held for its checks, the attempt fails as retryable naming ENOSPC, and once the spool's
 * disk has room the job ends done once.
 * Needs root and mount (tests/helpers/small-disk.ts): skipped elsewhere with mount's error, a failure in CI.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireCtData } from "../helpers/ct-data.js";
import { freshSeries, type FreshSeries } from "../helpers/fresh-series.js";
import { OPERATOR_TEST_PIPELINES, startService, type TestService, waitFor } from "../helpers/ct-service.js";
import { startOrthanc, type TestOrthanc } from "../helpers/orthanc.js";
import { canMountSmallDisk, mountSmallDisk, type SmallDisk } from "../helpers/small-disk.js";
import { requireOrthanc } from "../helpers/system-tools.js";

const SLICES = 20;
const DISK_MIB = 48;
const disk = requireCtData("lidc-idri-0002-ncct") && requireOrthanc() && canMountSmallDisk();

interface Job { id: number; sourceSeriesUid: string; state: string; attempts: number; outputSeriesUid: string | null; errorMessage: string | null }
interface Health { status: string; ledger: { writable: boolean; code?: string; action?: string; path?: string } }
interface Feed { cursor: number; orthancLast: number; caughtUp: boolean }
interface OrthancSeries { Instances: string[]; MainDicomTags: { SeriesInstanceUID: string } }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.runIf(disk)(`the data folder's disk full (a real ${DISK_MIB} MiB tmpfs, real Orthanc, built service)`, () => {
  let small: SmallDisk;
  let orthanc: TestOrthanc;
  let service: TestService;
  let source: FreshSeries;

  const probe = async <T>(route: string): Promise<{ status: number; body: T }> => {
    const response = await fetch(`${service.apiUrl}${route}`);
    return { status: response.status, body: (await response.json()) as T };
  };
  const jobsOf = async (uid: string): Promise<Job[]> => (await service.api<Job[]>("/jobs")).filter((j) => j.sourceSeriesUid === uid);

  beforeAll(async () => {
    small = mountSmallDisk(DISK_MIB)!;
    source = freshSeries("lidc-idri-0002-ncct", SLICES);
    orthanc = await startOrthanc({ stableAgeSeconds: 2 });
    service = await startService(orthanc, {
      ...OPERATOR_TEST_PIPELINES,
      CT_ENHANCE_DATA_DIR: small.folder,
      CT_ENHANCE_RECONCILE_CRON: "off",
      CT_ENHANCE_CPU_THREADS: "1",
    });
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
    service?.remove();
    await orthanc?.stop();
    source?.remove();
    small?.unmount();
  });

  it("says so on /health and /ready, takes no job, and once space is freed processes the series once", async () => {
    const started = Date.now();
    expect((await probe("/ready")).status).toBe(200);
    const ballast = small.fill();
    expect(small.freeBytes()).toBe(0);

    await orthanc.upload(source.files);
    const health = await waitFor("/health to report the full disk", async () => {
      const { status, body } = await probe<Health>("/health");
      expect(status).toBe(200); // liveness holds: a restart cannot free a disk
      return body.ledger.writable ? undefined : body;
    }, 60_000, service);
    expect(health.status).toBe("degraded");
    expect(health.ledger.code).toMatch(/^SQLITE_FULL/);
    expect(health.ledger.path).toContain(small.folder);
    expect(health.ledger.action).toMatch(/free space on the disk .* once 8 MiB are free/);
    const ready = await probe<{ ready: boolean; reasons: string[] }>("/ready");
    expect(ready.status).toBe(503);
    expect(ready.body.reasons.join(" ")).toMatch(/cannot be written \(SQLITE_FULL/);

    await sleep(5000); // the series is stable by now (StableAge 2 s): what the feed and the queue would have taken
    expect(await jobsOf(source.seriesInstanceUid)).toHaveLength(0);
    const feedWhileFull = await service.api<Feed>("/feed");
    expect(feedWhileFull.cursor).toBeLessThan(feedWhileFull.orthancLast);
    expect(service.log()).toMatch(/the ledger cannot be written/);
    // It stays so while the disk is full: a one-page probe write that fits where the failed write had room does not
    // count as writable again (it did before: ready and not ready every second).
    expect((await probe("/ready")).status).toBe(503);
    expect(service.log()).not.toMatch(/the ledger can be written again/);

    small.empty();
    const job = await waitFor("the series done once space is free", async () => {
      const [found] = await jobsOf(source.seriesInstanceUid);
      if (found?.state === "failed") throw new Error(`job failed: ${found.errorMessage}`);
      return found?.state === "done" ? found : undefined;
    }, 150_000, service);
    expect(job.attempts).toBe(1);
    expect(await jobsOf(source.seriesInstanceUid)).toHaveLength(1);
    const outputs = (await orthanc.rest<OrthancSeries[]>("/series?expand")).filter((s) => s.MainDicomTags.SeriesInstanceUID === job.outputSeriesUid);
    expect(outputs).toHaveLength(1);
    expect(outputs[0]!.Instances).toHaveLength(SLICES);
    expect((await probe("/ready")).status).toBe(200);
    expect((await probe<Health>("/health")).body).toMatchObject({ status: "ok", ledger: { writable: true } });
    const feed = await waitFor("the feed caught up", async () => {
      const state = await service.api<Feed>("/feed");
      return state.caughtUp ? state : undefined;
    }, 30_000, service);
    expect(feed.cursor).toBe(feed.orthancLast);
    expect(service.log()).toMatch(/the ledger can be written again; resuming/);
    console.info(`disk-full: ${(ballast / 2 ** 20).toFixed(1)} MiB ballast filled the ${DISK_MIB} MiB disk; SQLITE_FULL reported, no job while full; done once ${((Date.now() - started) / 1000).toFixed(1)} s after the upload`);
  }, 240_000);

  it("a disk that fills while a job computes: the job waits and retries, never fails for good, and ends done once", async () => {
    const started = Date.now();
    const during = freshSeries("lidc-idri-0002-ncct", SLICES);
    try {
      await orthanc.upload(during.files);
      // The derived series is spooled to the data folder while the model runs: fill the disk then.
      const running = await waitFor("the job computing", async () => {
        const [job] = await jobsOf(during.seriesInstanceUid);
        return job?.state === "running" && (job as Job & { stage?: string }).stage === "infer" ? job : undefined;
      }, 120_000, service);
      const ballast = small.fill();
      await sleep(8000);
      const [whileFull] = await jobsOf(during.seriesInstanceUid);
      expect(whileFull?.state).not.toBe("failed");
      const health = await probe<Health>("/health");
      small.empty();
      const job = await waitFor("the job done once space is free", async () => {
        const [found] = await jobsOf(during.seriesInstanceUid);
        if (found?.state === "failed") throw new Error(`job failed: ${found.errorMessage}`);
        return found?.state === "done" ? found : undefined;
      }, 200_000, service);
      expect(job.id).toBe(running.id);
      expect(await jobsOf(during.seriesInstanceUid)).toHaveLength(1);
      const outputs = (await orthanc.rest<OrthancSeries[]>("/series?expand")).filter((s) => s.MainDicomTags.SeriesInstanceUID === job.outputSeriesUid);
      expect(outputs).toHaveLength(1);
      expect(outputs[0]!.Instances).toHaveLength(SLICES);
      const detail = await service.api<{ events: { kind: string; message: string }[] }>(`/jobs/${job.id}`);
      const refusals = detail.events.filter((e) => /ENOSPC|SQLITE_FULL|disk/.test(e.message)).map((e) => e.message.slice(0, 200));
      console.info(`disk-full during a job: ${(ballast / 2 ** 20).toFixed(1)} MiB ballast while the job was in '${whileFull?.state}/${(whileFull as Job & { stage?: string })?.stage}', /health ${health.body.status} (ledger ${health.body.ledger.code ?? "writable"}); done after ${job.attempts} attempt(s), ${((Date.now() - started) / 1000).toFixed(1)} s; events: ${refusals.join(" | ")}`);
    } finally {
      small.empty();
      during.remove();
    }
  }, 300_000);
});

describe.runIf(disk)("the spool's disk full (a real 16 MiB tmpfs on <data>/spool, real Orthanc, built service)", () => {
  let orthanc: TestOrthanc;
  let service: TestService;
  let spool: SmallDisk;
  let source: FreshSeries;
  const dataDir = mkdtempSync(path.join(tmpdir(), "ct-enhance-spool-full-"));
  const jobsOf = async (uid: string): Promise<(Job & { stage: string | null })[]> =>
    (await service.api<(Job & { stage: string | null })[]>("/jobs")).filter((j) => j.sourceSeriesUid === uid);

  beforeAll(async () => {
    spool = mountSmallDisk(16, path.join(dataDir, "spool"))!;
    source = freshSeries("lidc-idri-0002-ncct", SLICES);
    orthanc = await startOrthanc({ stableAgeSeconds: 2 });
    service = await startService(orthanc, {
      ...OPERATOR_TEST_PIPELINES,
      CT_ENHANCE_DATA_DIR: dataDir,
      CT_ENHANCE_RECONCILE_CRON: "off",
      CT_ENHANCE_CPU_THREADS: "1",
    });
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
    service?.remove();
    await orthanc?.stop();
    source?.remove();
    spool?.unmount();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("fails the attempt as retryable naming ENOSPC, never for good, and ends done once the spool has room", async () => {
    const started = Date.now();
    spool.fill();
    await orthanc.upload(source.files);
    const refused = await waitFor("the attempt refused by the spool's disk", async () => {
      const [job] = await jobsOf(source.seriesInstanceUid);
      if (job?.state === "failed" || job?.state === "done") throw new Error(`job ${job.state} with the spool full: ${job.errorMessage}`);
      return job?.state === "retry-wait" ? job : undefined;
    }, 120_000, service);
    expect(refused.errorMessage).toMatch(/^cannot hold the derived instances in .*\/spool\/.* until their checks pass: ENOSPC: no space left on device.*free space on the data folder's disk/);
    expect((await fetch(`${service.apiUrl}/ready`)).status).toBe(200); // the ledger's own disk has room: only the job waits
    spool.empty();
    const job = await waitFor("the job done once the spool has room", async () => {
      const [found] = await jobsOf(source.seriesInstanceUid);
      if (found?.state === "failed") throw new Error(`job failed: ${found.errorMessage}`);
      return found?.state === "done" ? found : undefined;
    }, 150_000, service);
    expect(job.attempts).toBeGreaterThanOrEqual(2);
    expect(await jobsOf(source.seriesInstanceUid)).toHaveLength(1);
    const outputs = (await orthanc.rest<OrthancSeries[]>("/series?expand")).filter((s) => s.MainDicomTags.SeriesInstanceUID === job.outputSeriesUid);
    expect(outputs).toHaveLength(1);
    expect(outputs[0]!.Instances).toHaveLength(SLICES);
    console.info(`disk-full, spool: refused in ${refused.stage ?? "-"} with "${refused.errorMessage?.slice(0, 160)}"; done after ${job.attempts} attempts, ${((Date.now() - started) / 1000).toFixed(1)} s after the upload`);
  }, 300_000);
});
