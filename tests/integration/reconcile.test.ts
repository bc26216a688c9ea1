/**
 * Nothing forgotten overnight: the service is killed (SIGKILL) while Orthanc receives two NCCT series (one partly
 * before the kill, one wholly after it), and Orthanc's change log is then cleared (as a log rotation or a missed event would leave it), so the change feed cannot report
 * them. On start, reconcile compares Orthanc with the ledger, hands both series to the watcher, and both are
 * processed once.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireCtData } from "../helpers/ct-data.js";
import { contiguousSubset, type SeriesSubset } from "../helpers/ct-subset.js";
import { startService, waitFor, type TestService, OPERATOR_TEST_PIPELINES } from "../helpers/ct-service.js";
import { startOrthanc, type TestOrthanc } from "../helpers/orthanc.js";
import { requireOrthanc } from "../helpers/system-tools.js";

const ready = requireCtData("lidc-idri-0002-ncct", "ricord-ncct-jpegls") && requireOrthanc();

interface Job { id: number; state: string; sourceOrthancId: string; outputSeriesUid: string | null; errorMessage: string | null }
interface Schedule { name: string; lastRun: { ok: boolean; summary: { unseen: string[]; changed: string[] } } | null }

describe.runIf(ready)("reconcile after a crash (real Orthanc, built service, SIGKILL)", () => {
  let orthanc: TestOrthanc;
  let service: TestService;
  let chest: SeriesSubset;
  let covid: SeriesSubset;

  const upload = async (files: string[]): Promise<string> => {
    let series = "";
    for (const file of files) {
      series = (await orthanc.rest<{ ParentSeries: string }>("/instances", { method: "POST", body: readFileSync(file) })).ParentSeries;
    }
    return series;
  };

  beforeAll(async () => {
    chest = contiguousSubset("lidc-idri-0002-ncct", 24);
    covid = contiguousSubset("ricord-ncct-jpegls", 24);
    orthanc = await startOrthanc({ stableAgeSeconds: 2 });
    // Reconcile at start only: the quarter-hourly run, if the clock passes :00/:15/:30/:45 during the test, would be
    // the "last run" the test reads, and it finds nothing new.
    service = await startService(orthanc, { ...OPERATOR_TEST_PIPELINES, CT_ENHANCE_RECONCILE_CRON: "off" });
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
    service?.remove();
    await orthanc?.stop();
    chest?.remove();
    covid?.remove();
  });

  it("finds and processes both series that arrived while it was down", async () => {
    const started = Date.now();
    // The chest series starts arriving; the service dies in the middle of it; the second series arrives while it is down.
    const chestUpload = upload(chest.files);
    await waitFor("some instances in Orthanc", async () => ((await orthanc.rest<string[]>("/instances")).length >= 6 ? true : undefined), 30_000);
    await service.stop("kill");
    const [chestId, covidId] = await Promise.all([chestUpload, upload(covid.files)]);
    // What the feed would have said is gone.
    const cleared = await fetch(`${orthanc.url}/changes`, {
      method: "DELETE",
      headers: { Authorization: `Basic ${Buffer.from(`${orthanc.username}:${orthanc.password}`).toString("base64")}` },
    });
    expect(cleared.ok).toBe(true);
    expect((await orthanc.rest<{ Changes: unknown[] }>("/changes?since=0")).Changes).toEqual([]);

    await service.start();
    const jobs = await waitFor("both series processed", async () => {
      const all = await service.api<Job[]>("/jobs");
      const failed = all.find((j) => j.state === "failed");
      if (failed) throw new Error(`job ${failed.id} failed: ${failed.errorMessage}`);
      return all.length === 2 && all.every((j) => j.state === "done") ? all : undefined;
    }, 150_000, service);
    expect(jobs.map((j) => j.sourceOrthancId).sort()).toEqual([chestId, covidId].sort());

    const reconcile = (await service.api<Schedule[]>("/schedules")).find((s) => s.name === "reconcile")!;
    expect(reconcile.lastRun?.ok).toBe(true);
    const handed = [...reconcile.lastRun!.summary.unseen, ...reconcile.lastRun!.summary.changed];
    // The series that arrived while the service was down came from reconcile alone (the chest series may have been
    // seen through NewSeries before the kill; then the watcher had it already).
    expect(handed).toContain(covidId);
    expect(handed.every((id) => id === chestId || id === covidId)).toBe(true);

    for (const job of jobs) {
      const hits = await orthanc.rest<{ ID: string; Type: string }[]>("/tools/lookup", { method: "POST", body: job.outputSeriesUid! });
      const derived = await orthanc.rest<{ Instances: string[] }>(`/series/${hits.find((h) => h.Type === "Series")!.ID}`);
      expect(derived.Instances).toHaveLength(24);
    }
    // Nothing twice: one more reconcile finds nothing new and queues nothing.
    const again = await service.api<{ ok: boolean; summary: { unseen: string[] } }>("/schedules/reconcile/run", { method: "POST" });
    expect(again.ok).toBe(true);
    await new Promise((r) => setTimeout(r, 3_000));
    expect((await service.api<Job[]>("/jobs")).length).toBe(2);
    console.info(`reconcile test: both series processed ${((Date.now() - started) / 1000).toFixed(1)} s after the uploads began`);
  }, 240_000);
});
