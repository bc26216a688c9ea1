/**
 * The scale-out PACS: Orthanc with its index and its storage in a real PostgreSQL (Debian `postgresql` and
 * `orthanc-postgresql`; a cluster this test makes in a temp folder), and the built service served against it, as a
 * user runs it. A real series arrives and is processed through the change feed, and everything, the derived series
 * included, lands in the database (not in Orthanc's SQLite file or storage folder), and a second Orthanc on the same
 * database sees it all; Orthanc restarted on the same database keeps its change log and nothing is processed twice;
 * a series stored while ct-enhance was down, its change log cleared, is found by reconcile against the PostgreSQL
 * index and processed once.
 */
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireCtData } from "../helpers/ct-data.js";
import { contiguousSubset, type SeriesSubset } from "../helpers/ct-subset.js";
import { OPERATOR_TEST_PIPELINES, startService, waitFor, type TestService } from "../helpers/ct-service.js";
import { startOrthanc, type TestOrthanc } from "../helpers/orthanc.js";
import { requirePostgreSQL, startPostgreSQL, type TestPostgreSQL } from "../helpers/postgresql.js";
import { requireOrthanc } from "../helpers/system-tools.js";

const ready = requireCtData("lidc-idri-0002-ncct", "ricord-ncct-jpegls") && requireOrthanc() && requirePostgreSQL();

// The test pipeline selects series of 20 instances or more.
const SLICES = 20;

interface Job { id: number; state: string; attempts: number; sourceOrthancId: string; outputSeriesUid: string | null; errorMessage: string | null }
interface Changes { Changes: { ChangeType: string; ID: string; Seq: number }[]; Last: number; Done: boolean }
interface Schedule { name: string; lastRun: { ok: boolean; summary: { unseen: string[]; changed: string[] } } | null }

describe.runIf(ready)("Orthanc on PostgreSQL (real cluster, built service)", () => {
  let postgresql: TestPostgreSQL;
  let orthanc: TestOrthanc;
  let service: TestService;
  let chest: SeriesSubset;
  let covid: SeriesSubset;

  const jobsWhenSettled = (count: number, what: string): Promise<Job[]> =>
    waitFor(what, async () => {
      const all = await service.api<Job[]>("/jobs");
      const failed = all.find((j) => j.state === "failed");
      if (failed) throw new Error(`job ${failed.id} failed: ${failed.errorMessage}`);
      return all.length === count && all.every((j) => j.state === "done") ? all : undefined;
    }, 90_000, service);

  /** The last Orthanc change the service's change feed recorded (its /metrics gauge). */
  const feedCursor = async (): Promise<number> => {
    const metrics = await (await fetch(`${service.apiUrl}/metrics`, { headers: { Authorization: `Bearer ${service.token}` } })).text();
    return Number(/^ct_enhance_feed_cursor (\d+)$/m.exec(metrics)?.[1] ?? -1);
  };

  /** The derived series' Orthanc ID, found by its SeriesInstanceUID, and how many instances it holds. */
  const derivedSeries = async (seriesUid: string): Promise<{ id: string; instances: number }> => {
    const hits = await orthanc.rest<{ ID: string; Type: string }[]>("/tools/lookup", { method: "POST", body: seriesUid });
    const id = hits.find((h) => h.Type === "Series")!.ID;
    return { id, instances: (await orthanc.rest<{ Instances: string[] }>(`/series/${id}`)).Instances.length };
  };

  beforeAll(async () => {
    chest = contiguousSubset("lidc-idri-0002-ncct", SLICES);
    covid = contiguousSubset("ricord-ncct-jpegls", SLICES);
    postgresql = await startPostgreSQL();
    orthanc = await startOrthanc({ stableAgeSeconds: 2, postgresql: postgresql.database });
    // Reconcile at start only (the quarter-hourly run would muddle which run found the last series).
    service = await startService(orthanc, { ...OPERATOR_TEST_PIPELINES, CT_ENHANCE_RECONCILE_CRON: "off" });
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
    service?.remove();
    await orthanc?.stop();
    postgresql?.stop();
    chest?.remove();
    covid?.remove();
  });

  it("keeps Orthanc's index and files in PostgreSQL, follows its change feed, survives its restart and reconciles", async () => {
    const started = Date.now();
    const system = await orthanc.rest<{ DatabaseBackendPlugin: string | null; StorageAreaPlugin: string | null }>("/system");
    expect(system.DatabaseBackendPlugin).toMatch(/libOrthancPostgreSQLIndex/);
    expect(system.StorageAreaPlugin).toMatch(/libOrthancPostgreSQLStorage/);
    expect(await orthanc.rest<string[]>("/plugins")).toEqual(expect.arrayContaining(["postgresql-index", "postgresql-storage"]));

    // A series arrives; the change feed (reconcile ran at start on an empty Orthanc, and no cron) hands it on.
    const [chestId] = await orthanc.uploadFolder(chest.folder);
    const [first] = await jobsWhenSettled(1, "the series processed through the change feed");
    expect(first!.sourceOrthancId).toBe(chestId);
    const output = await derivedSeries(first!.outputSeriesUid!);
    expect(output.instances).toBe(SLICES);
    const startReconcile = (await service.api<Schedule[]>("/schedules")).find((s) => s.name === "reconcile")!;
    expect(startReconcile.lastRun?.summary.unseen ?? []).not.toContain(chestId);

    // In the database, not beside it: both series' resources are rows of Orthanc's index, every file a large object
    // of its storage area, and Orthanc made no SQLite index or attachment folder in its storage directory.
    const instances = Number(await orthanc.rest<{ CountInstances: number }>("/statistics").then((s) => s.CountInstances));
    expect(instances).toBeGreaterThanOrEqual(2 * SLICES);
    expect(postgresql.query(`SELECT count(*) FROM Resources WHERE publicId IN ('${chestId}', '${output.id}')`)).toBe("2");
    expect(Number(postgresql.query("SELECT count(*) FROM Resources WHERE resourceType = 3"))).toBe(instances);
    expect(Number(postgresql.query("SELECT count(*) FROM StorageArea"))).toBeGreaterThanOrEqual(instances);
    expect(existsSync(path.join(orthanc.storageDir, "index"))).toBe(false);
    expect(readdirSync(orthanc.storageDir).filter((entry) => /^[0-9a-f]{2}$/.test(entry))).toEqual([]);

    // A second Orthanc on the same database (what a site scales out with, "Lock": false) sees the same PACS: both
    // series, the derived one's instances, and the same change log.
    const sharing = await startOrthanc({ stableAgeSeconds: 2, postgresql: postgresql.database });
    try {
      expect((await sharing.rest<string[]>("/series")).sort()).toEqual([chestId, output.id].sort());
      expect((await sharing.rest<{ Instances: string[] }>(`/series/${output.id}`)).Instances).toHaveLength(SLICES);
      expect((await sharing.rest<Changes>("/changes?last")).Last).toBe((await orthanc.rest<Changes>("/changes?last")).Last);
    } finally {
      await sharing.stop();
    }

    // Orthanc restarted on the same database: its change log is kept (the unstable-series list in memory is not,
    // which the feed's NewSeries handling already covers), and the service, which rode out the outage, does nothing again.
    const changesBefore = await orthanc.rest<Changes>("/changes?since=0&limit=1000");
    expect(changesBefore.Changes.some((c) => c.ChangeType === "NewSeries" && c.ID === chestId)).toBe(true);
    await orthanc.restart();
    const changesAfter = await orthanc.rest<Changes>("/changes?since=0&limit=1000");
    expect(changesAfter.Changes.slice(0, changesBefore.Changes.length)).toEqual(changesBefore.Changes);
    await waitFor("the service to see Orthanc again", async () => ((await fetch(`${service.apiUrl}/ready`)).ok ? true : undefined), 30_000, service);
    await new Promise((r) => setTimeout(r, 4_000));
    const afterRestart = await service.api<Job[]>("/jobs");
    expect(afterRestart.map((j) => [j.id, j.state, j.attempts])).toEqual([[first!.id, "done", first!.attempts]]);
    expect((await derivedSeries(first!.outputSeriesUid!)).instances).toBe(SLICES);

    // ct-enhance down while a second series is stored, and the change log cleared (a rotation, or a missed event):
    // only reconcile, comparing the PostgreSQL-backed index with the ledger, can find it.
    await service.stop();
    const [covidId] = await orthanc.uploadFolder(covid.folder);
    const cleared = await fetch(`${orthanc.url}/changes`, { method: "DELETE", headers: { Authorization: orthanc.authorization } });
    expect(cleared.ok).toBe(true);
    expect((await orthanc.rest<Changes>("/changes?since=0")).Changes).toEqual([]);
    await service.start();
    const both = await jobsWhenSettled(2, "the series stored while the service was down processed");
    expect(both.map((j) => j.sourceOrthancId).sort()).toEqual([chestId, covidId].sort());
    expect(both.find((j) => j.id === first!.id)?.attempts).toBe(first!.attempts);
    const reconcile = (await service.api<Schedule[]>("/schedules")).find((s) => s.name === "reconcile")!;
    expect(reconcile.lastRun?.ok).toBe(true);
    expect(reconcile.lastRun!.summary.unseen).toEqual([covidId]);
    const second = both.find((j) => j.sourceOrthancId === covidId)!;
    expect((await derivedSeries(second.outputSeriesUid!)).instances).toBe(SLICES);

    // Nothing twice: one more reconcile against the database queues nothing. It waits for the change feed to have
    // recorded the NewSeries of the derived series just stored (otherwise reconcile rightly calls it unseen).
    const last = (await orthanc.rest<Changes>("/changes?last")).Last;
    await waitFor("the change feed to record Orthanc's last change", async () => ((await feedCursor()) >= last ? true : undefined), 30_000, service);
    const again = await service.api<{ ok: boolean; summary: { unseen: string[] } }>("/schedules/reconcile/run", { method: "POST" });
    expect(again.ok).toBe(true);
    expect(again.summary.unseen).toEqual([]);
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await service.api<Job[]>("/jobs")).length).toBe(2);
    console.info(`orthanc-postgresql test: ${((Date.now() - started) / 1000).toFixed(1)} s from the first upload`);
  }, 240_000);
});
