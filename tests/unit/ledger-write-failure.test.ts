/**
 * Issue 14, "disk and memory": the ledger's disk refuses writes (read-only, full, I/O error). The service says so on
 * /health and /ready (the file, SQLite's code, what to do), the change feed stops advancing its cursor and no job
 * starts while it lasts; when writes succeed again the feed reads again the changes it could not record and the
 * queue takes its jobs: nothing is lost.
 *
 * How the failure is made: the tests run as root here, where chmod on the ledger file does not stop writes, so the
 * ledger's own seam `refuseWrites` puts its connection in `PRAGMA query_only`: every write then fails with SQLite's
 * real SQLITE_READONLY, the code a read-only disk gives. SQLITE_FULL and SQLITE_IOERR are classified alike (checked
 * on the codes below); a really full disk (a tmpfs filled to ENOSPC, SQLite's own SQLITE_FULL) is
 * tests/integration/disk-full.test.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createApi, listen } from "../../src/api/server.js";
import { loadConfig } from "../../src/config.js";
import { WatchState } from "../../src/jobs/feed-records.js";
import { isLedgerWriteFailure } from "../../src/jobs/ledger-health.js";
import { Ledger, LEDGER_FILE } from "../../src/jobs/ledger.js";
import { ChangeFeed } from "../../src/orthanc/change-feed.js";
import type { OrthancChange, OrthancChanges, OrthancClient } from "../../src/orthanc/rest.js";
import type { PipelineContext } from "../../src/pipeline/runner.js";
import { JobQueue } from "../../src/service/job-queue.js";

const change = (Seq: number, ChangeType: string, ID: string): OrthancChange =>
  ({ Seq, ChangeType, ID, ResourceType: "Series", Path: `/series/${ID}`, Date: "20261130T000000" }) as OrthancChange;

/** Orthanc's /changes over a list that the test grows, with its exclusive `since` and paging. */
function fakeOrthanc(changes: OrthancChange[]): OrthancClient {
  return {
    system: async () => ({ Version: "1.10.1", Name: "test" }),
    async changes(since: number, limit: number): Promise<OrthancChanges> {
      const page = changes.filter((c) => c.Seq > since).slice(0, limit);
      const last = page.length > 0 ? page[page.length - 1]!.Seq : Math.max(since, changes.at(-1)?.Seq ?? 0);
      return { Changes: page, Done: page.length < limit, Last: last };
    },
    lastChange: async () => changes.at(-1)?.Seq ?? 0,
  } as unknown as OrthancClient;
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("the ledger's disk refuses writes", () => {
  let dir: string;
  let ledger: Ledger;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "ledger-readonly-"));
    ledger = new Ledger(dir);
  });
  afterEach(() => {
    ledger.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("classifies the disk's refusals as ledger write failures, and nothing else", () => {
    const coded = (code: string) => Object.assign(new Error(code), { code });
    for (const code of ["SQLITE_READONLY", "SQLITE_READONLY_DBMOVED", "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_IOERR_WRITE", "SQLITE_CANTOPEN"]) {
      expect(isLedgerWriteFailure(coded(code)), code).toBe(true);
    }
    for (const error of [coded("SQLITE_CONSTRAINT_UNIQUE"), coded("SQLITE_BUSY"), new Error("x"), undefined, "SQLITE_FULL"]) {
      expect(isLedgerWriteFailure(error)).toBe(false);
    }
    ledger.refuseWrites(true);
    let thrown: unknown;
    try {
      ledger.feed.setCursor(9);
    } catch (error) {
      thrown = error;
    }
    expect((thrown as { code?: string }).code).toBe("SQLITE_READONLY");
    expect(ledger.health.noteError(thrown)).toBe(true);
    expect(ledger.health.fault()).toMatchObject({ path: path.join(dir, LEDGER_FILE), code: "SQLITE_READONLY" });
    expect(ledger.health.fault()!.action).toMatch(/writable/);
  });

  it("stops the feed and the queue, says so on /health and /ready, and loses nothing once writable again", async () => {
    const changes = [change(1, "NewSeries", "s1"), change(2, "StableSeries", "s1")];
    const orthanc = fakeOrthanc(changes);
    const feed = new ChangeFeed(orthanc, ledger.feed, { pollIntervalMs: 20, pageSize: 100, writeGate: ledger.health });
    const config = loadConfig(undefined, { CT_ENHANCE_DATA_DIR: dir, CT_ENHANCE_API_TOKEN: "secret" });
    const ctx = { config, ledger, orthanc, pipelines: [] } as unknown as PipelineContext;
    const queue = new JobQueue(ctx, 20);
    const server: Server = await listen(createApi({ config, ledger, orthanc }), "127.0.0.1", 0);
    const address = server.address();
    const base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    try {
      feed.start();
      await until("the first changes recorded", () => ledger.feed.cursor() === 2);
      const { job } = ledger.jobs.create({ sourceOrthancId: "s0", sourceSeriesUid: "1.2.9", studyUid: "1.2", pipeline: "p", modelId: "m", modelVersion: "1" });

      ledger.refuseWrites(true);
      changes.push(change(3, "NewSeries", "s2"), change(4, "StableSeries", "s2"), change(5, "NewSeries", "s3"));
      await until("the feed to meet the refusal", () => ledger.health.fault() !== undefined);
      queue.start();
      await new Promise((r) => setTimeout(r, 400)); // the feed and the queue would have acted many times by now
      expect(ledger.feed.cursor()).toBe(2);
      expect(ledger.feed.watchedSeriesRecords().map((s) => s.orthancId)).toEqual(["s1"]);
      expect(ledger.jobs.get(job.id)!.state).toBe("queued");

      const health = await fetch(`${base}/health`);
      expect(health.status).toBe(200); // liveness: a restart would not mend the disk
      const healthBody = (await health.json()) as { status: string; ledger: Record<string, unknown> };
      expect(healthBody.status).toBe("degraded");
      expect(healthBody.ledger).toMatchObject({ writable: false, path: path.join(dir, LEDGER_FILE), code: "SQLITE_READONLY" });
      const ready = await fetch(`${base}/ready`);
      expect(ready.status).toBe(503);
      const readyBody = (await ready.json()) as { ready: boolean; checks: Record<string, boolean>; reasons: string[] };
      expect(readyBody.checks).toEqual({ started: true, orthancReachable: true, ledgerWritable: false });
      expect(readyBody.reasons.join(" ")).toContain(`the ledger ${path.join(dir, LEDGER_FILE)} cannot be written (SQLITE_READONLY`);
      expect(readyBody.reasons.join(" ")).toMatch(/no job starts/);

      ledger.refuseWrites(false);
      await until("the feed to read again what it could not record", () => ledger.feed.cursor() === 5);
      expect(ledger.feed.watchedSeries(WatchState.Stable).sort()).toEqual(["s1", "s2"]);
      expect(ledger.feed.watchedSeries(WatchState.AwaitingStable)).toEqual(["s3"]);
      // The queue took the job (it fails at once: this test configures no pipeline, which is not the point here).
      await until("the queue to take its job", () => ledger.jobs.get(job.id)!.state !== "queued");
      expect(ledger.jobs.get(job.id)!.attempts).toBe(1);
      expect((await fetch(`${base}/ready`)).status).toBe(200);
      const healthAfter = (await (await fetch(`${base}/health`)).json()) as { ledger: Record<string, unknown> };
      expect(healthAfter.ledger).toEqual({ writable: true });
    } finally {
      await feed.stop();
      await queue.stop();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("queues again a job whose end the ledger could not take, once it can", async () => {
    const config = loadConfig(undefined, { CT_ENHANCE_DATA_DIR: dir, CT_ENHANCE_API_TOKEN: "secret" });
    let refusals = 0;
    // The disk turns read-only while the job runs: the first look at the pipelines (its select stage) flips it.
    const ctx = {
      config, ledger, orthanc: fakeOrthanc([]),
      get pipelines() {
        if (refusals++ === 0) ledger.refuseWrites(true);
        return [];
      },
    } as unknown as PipelineContext;
    const { job } = ledger.jobs.create({ sourceOrthancId: "s0", sourceSeriesUid: "1.2.9", studyUid: "1.2", pipeline: "p", modelId: "m", modelVersion: "1" });
    const queue = new JobQueue(ctx, 20);
    try {
      queue.start();
      await until("the job's end to be refused", () => ledger.health.fault() !== undefined);
      await new Promise((r) => setTimeout(r, 300));
      expect(ledger.jobs.get(job.id)!.state).toBe("running"); // what the ledger last took
      ledger.refuseWrites(false);
      await until("the job to run again and end", () => ["failed", "retry-wait"].includes(ledger.jobs.get(job.id)!.state));
      expect(ledger.jobs.get(job.id)!.attempts).toBe(2);
      expect(ledger.jobs.events(job.id).map((e) => e.kind)).toContain("recovered");
    } finally {
      await queue.stop();
    }
  });
});
