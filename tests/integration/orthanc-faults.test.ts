/**
 * Orthanc faults (issue 14), through the built service and a real Orthanc (reached through a TCP proxy, so a stop
 * can land inside a WADO-RS response); every series is 20 real LIDC-IDRI-0002 slices under new UIDs:
 * - Orthanc stopped (SIGKILL) in the middle of a fetch, and in the middle of a store, for OUTAGE_S seconds (the
 *   issue's 30 in CI; 12 elsewhere, for a quicker local run; CT_ENHANCE_OUTAGE_SECONDS sets it), then started on the
 *   same storage and ports: the job retries with backoff (1 s, doubling) and ends done, one output, and the feed's
 *   cursor reaches Orthanc's last change (no change skipped while Orthanc was away);
 * - Orthanc restarted keeping its database: no change skipped, no job twice;
 * - Orthanc restarted on an empty database (its change log gone, the cursor far ahead of its last change): the feed
 *   sees the cursor above Orthanc's last change, follows from 0 and reconciles; the new series is processed;
 * - the service given a wrong Orthanc password: /ready says Orthanc refuses the login, without the password; no job;
 *   restarted with the right one, the series that arrived meanwhile is processed.
 */
import { rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireCtData } from "../helpers/ct-data.js";
import { freshSeries, type FreshSeries } from "../helpers/fresh-series.js";
import { OPERATOR_TEST_PIPELINES, startService, type TestService, waitFor } from "../helpers/ct-service.js";
import { startOrthanc, type TestOrthanc } from "../helpers/orthanc.js";
import { type PausingProxy, startPausingProxy } from "../helpers/pausing-proxy.js";
import { requireOrthanc } from "../helpers/system-tools.js";

const ready = requireCtData("lidc-idri-0002-ncct") && requireOrthanc();
const SLICES = 20;
/**
 * 30 s costs CI about two minutes over 12 s (the file: 93 s at 12 s, 221 s at 30 s, on the shared 2-core machine):
 * two outages 18 s longer, and the retry that finds Orthanc back comes at the 32 s step of the 1 s doubling.
 */
const OUTAGE_S = Number(process.env.CT_ENHANCE_OUTAGE_SECONDS ?? (process.env.CI ? 30 : 12));

interface Job {
  id: number; sourceOrthancId: string; sourceSeriesUid: string; state: string; stage: string | null; attempts: number;
  errorStage: string | null; errorMessage: string | null; outputSeriesUid: string | null;
}
interface JobDetail extends Job { events: { kind: string; message: string }[] }
interface OrthancSeries { ID: string; Instances: string[]; MainDicomTags: { SeriesInstanceUID: string } }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.runIf(ready)("Orthanc faults: stopped mid-fetch and mid-store, restarted, reset, wrong password (real Orthanc, built service)", () => {
  let orthanc: TestOrthanc;
  let proxy: PausingProxy;
  let service: TestService;
  const series: FreshSeries[] = [];
  const configFile = path.join(tmpdir(), `ct-enhance-faults-${process.pid}.json`);

  const fresh = (): FreshSeries => {
    const made = freshSeries("lidc-idri-0002-ncct", SLICES);
    series.push(made);
    return made;
  };
  const jobsOf = async (uid: string): Promise<Job[]> => (await service.api<Job[]>("/jobs")).filter((j) => j.sourceSeriesUid === uid);
  const doneJob = (what: string, uid: string): Promise<Job> => waitFor(what, async () => {
    const [job] = await jobsOf(uid);
    if (job?.state === "failed") throw new Error(`job failed: ${job.errorMessage}`);
    return job?.state === "done" ? job : undefined;
  }, 150_000 + OUTAGE_S * 3000, service);
  /** The job's one output in Orthanc: its series, whole, and no other series with that UID. */
  const expectOneWholeOutput = async (job: Job): Promise<void> => {
    const all = await orthanc.rest<OrthancSeries[]>("/series?expand");
    const outputs = all.filter((s) => s.MainDicomTags.SeriesInstanceUID === job.outputSeriesUid);
    expect(outputs).toHaveLength(1);
    expect(outputs[0]!.Instances).toHaveLength(SLICES);
    expect(await jobsOf(job.sourceSeriesUid)).toHaveLength(1);
  };
  /** The feed has read every change Orthanc logged: its cursor is Orthanc's last change, asked of Orthanc itself. */
  const expectFeedCaughtUp = async (): Promise<number> => {
    const last = (await orthanc.rest<{ Last: number }>("/changes?last")).Last;
    const feed = await waitFor("the feed at Orthanc's last change", async () => {
      const state = await service.api<{ cursor: number }>("/feed");
      return state.cursor >= last ? state : undefined;
    }, 30_000, service);
    expect(feed.cursor).toBe(last);
    return last;
  };
  const outage = async (during: () => Promise<void> = async () => undefined): Promise<void> => {
    await orthanc.halt("SIGKILL");
    proxy.resume(); // the held bytes and Orthanc's closed sockets reach the service: the request in flight breaks
    await Promise.all([sleep(OUTAGE_S * 1000), during()]);
    await orthanc.resume();
  };

  beforeAll(async () => {
    orthanc = await startOrthanc({ stableAgeSeconds: 2 });
    proxy = await startPausingProxy(orthanc.url);
    // Two instances a STOW-RS request, one at a time: the store lasts long enough for the test to stop Orthanc inside it.
    writeFileSync(configFile, JSON.stringify({ jobs: { maxAttempts: 8 }, store: { instancesPerRequest: 2, parallelRequests: 1 } }));
    service = await startService({ ...orthanc, url: proxy.url }, {
      ...OPERATOR_TEST_PIPELINES,
      CT_ENHANCE_CONFIG: configFile,
      CT_ENHANCE_RETRY_DELAY_SECONDS: "1", // 1, 2, 4, 8, 16, 32 s: a 12 s outage is over by the 5th attempt, 30 s by the 6th
      CT_ENHANCE_RECONCILE_CRON: "off",
      CT_ENHANCE_CPU_THREADS: "1",
    });
  }, 120_000);

  afterAll(async () => {
    await service?.stop("kill");
    service?.remove();
    await proxy?.close();
    await orthanc?.stop();
    for (const made of series) made.remove();
    rmSync(configFile, { force: true });
  });

  it(`Orthanc stopped for ${OUTAGE_S} s during the fetch: the job retries with backoff and ends done, one output`, async () => {
    const started = Date.now();
    const source = fresh();
    proxy.pauseAfter(2 * 1024 * 1024); // 20 slices are ~10 MB over WADO-RS: hold the response after 2 MB
    await orthanc.upload(source.files);
    await Promise.race([proxy.paused(), sleep(60_000).then(() => { throw new Error("the fetch never started"); })]);
    const [during] = await jobsOf(source.seriesInstanceUid);
    expect(during?.stage).toBe("fetch");
    await outage();
    const job = await doneJob("the job done after the outage", source.seriesInstanceUid);
    expect(job.attempts).toBeGreaterThanOrEqual(2);
    const detail = await service.api<JobDetail>(`/jobs/${job.id}`);
    const failures = detail.events.filter((e) => e.kind === "failed" || /retry at/.test(e.message));
    expect(failures.length).toBeGreaterThanOrEqual(1);
    expect(failures[0]!.message).toMatch(/^fetch: /);
    await expectOneWholeOutput(job);
    await expectFeedCaughtUp();
    console.info(`orthanc-faults: stopped mid-fetch for ${OUTAGE_S} s; done after ${job.attempts} attempts, ${((Date.now() - started) / 1000).toFixed(1)} s after the upload; failures: ${failures.map((e) => e.message.slice(0, 160)).join(" | ")}`);
  }, 180_000 + OUTAGE_S * 4000);

  it(`Orthanc stopped for ${OUTAGE_S} s during the store: the job retries and ends done, one whole output`, async () => {
    const started = Date.now();
    const source = fresh();
    await orthanc.upload(source.files);
    const stageOf = (wanted: string[]) => async () => {
      const [job] = await jobsOf(source.seriesInstanceUid);
      if (job && job.state !== "running" && job.state !== "queued") throw new Error(`job ${job.state} before its store`);
      return job?.stage && wanted.includes(job.stage) ? job : undefined;
    };
    // Past the fetch, the proxy holds every answer from Orthanc: the store's first request hangs in it however fast
    // this machine stores (a fixed sleep let a quiet machine finish the store before the outage).
    await waitFor("the job past its fetch", stageOf(["probe", "infer", "write", "store"]), 120_000, service);
    proxy.pauseAfter(1);
    await Promise.race([proxy.paused(), sleep(30_000).then(() => { throw new Error("nothing came back from Orthanc"); })]);
    const inStore = await waitFor("the job in its store stage", stageOf(["store"]), 120_000, service);
    await outage();
    const job = await doneJob("the job done after the outage", source.seriesInstanceUid);
    expect(job.id).toBe(inStore.id);
    expect(job.attempts).toBeGreaterThanOrEqual(2);
    const detail = await service.api<JobDetail>(`/jobs/${job.id}`);
    expect(detail.events.some((e) => /store/.test(e.message) && /retry at/.test(e.message))).toBe(true);
    await expectOneWholeOutput(job);
    await expectFeedCaughtUp();
    console.info(`orthanc-faults: stopped mid-store for ${OUTAGE_S} s; done after ${job.attempts} attempts, ${((Date.now() - started) / 1000).toFixed(1)} s after the upload`);
  }, 180_000 + OUTAGE_S * 4000);

  it("Orthanc restarted with its change log kept: no change skipped, no job twice", async () => {
    const started = Date.now();
    const before = fresh();
    const after = fresh();
    await orthanc.upload(before.files);
    await orthanc.restart(); // inside its StableAge: the StableSeries event of `before` is never sent
    await orthanc.upload(after.files);
    const jobs = [await doneJob("the series sent before the restart", before.seriesInstanceUid), await doneJob("the series sent after it", after.seriesInstanceUid)];
    for (const job of jobs) await expectOneWholeOutput(job);
    const feed = await waitFor("the feed caught up", async () => {
      const state = await service.api<{ cursor: number; orthancLast: number; caughtUp: boolean }>("/feed");
      return state.caughtUp ? state : undefined;
    }, 30_000, service);
    expect(feed.cursor).toBe(feed.orthancLast);
    // Every source series Orthanc holds has exactly one job.
    const sources = series.map((s) => s.seriesInstanceUid);
    for (const uid of sources) expect(await jobsOf(uid)).toHaveLength(1);
    console.info(`orthanc-faults: restart keeping the log: both series done once, cursor ${feed.cursor} = Orthanc's last, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 180_000);

  it("Orthanc restarted on an empty database (change log cleared): the feed notices its cursor is ahead, follows from 0, and the new series is processed", async () => {
    const started = Date.now();
    const { cursor } = await service.api<{ cursor: number }>("/feed");
    await orthanc.halt();
    await orthanc.resume({ clearStorage: true });
    const source = fresh();
    await orthanc.upload(source.files);
    const last = await orthanc.rest<{ Last: number }>("/changes?last");
    expect(last.Last).toBeLessThan(cursor); // the new series' changes carry numbers the cursor has already passed
    const job = await doneJob("the series sent to the new database", source.seriesInstanceUid);
    await expectOneWholeOutput(job);
    expect(service.log()).toMatch(/stored cursor is ahead of Orthanc's last change: Orthanc's database was reset; following from 0/);
    expect(service.log()).toMatch(/reconciling Orthanc's series with the ledger/);
    console.info(`orthanc-faults: empty database: cursor ${cursor} > Orthanc's last ${last.Last}; reset to 0, series done ${((Date.now() - started) / 1000).toFixed(1)} s after the restart`);
  }, 180_000);

  it("a wrong Orthanc password: /ready names the refused login (no password), no job; the right one processes the series", async () => {
    const started = Date.now();
    const wrong = `wrong-${Math.random().toString(36).slice(2)}`;
    await service.stop();
    await service.start({ CT_ENHANCE_ORTHANC_PASSWORD: wrong });
    const source = fresh();
    await orthanc.upload(source.files);
    const readiness = await fetch(`${service.apiUrl}/ready`);
    expect(readiness.status).toBe(503);
    const text = await readiness.text();
    expect(text).toMatch(/Orthanc refuses the login .*CT_ENHANCE_ORTHANC_PASSWORD/);
    expect(text).not.toContain(wrong);
    expect(text).not.toContain(orthanc.password);
    await sleep(4000); // what a few polls of the feed would have found
    expect(await jobsOf(source.seriesInstanceUid)).toHaveLength(0);
    expect(service.log()).toMatch(/cannot read Orthanc's change feed.*refuses the login/);
    expect(service.log()).not.toContain(wrong);

    await service.stop();
    await service.start({ CT_ENHANCE_ORTHANC_PASSWORD: orthanc.password });
    expect((await fetch(`${service.apiUrl}/ready`)).status).toBe(200);
    const job = await doneJob("the series once the password is right", source.seriesInstanceUid);
    await expectOneWholeOutput(job);
    console.info(`orthanc-faults: wrong password refused with a reason, no job; right password: done ${((Date.now() - started) / 1000).toFixed(1)} s after the first start`);
  }, 180_000);
});
