import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { WatchState } from "../../src/jobs/feed-records.js";
import { Ledger } from "../../src/jobs/ledger.js";
import { ChangeFeed } from "../../src/orthanc/change-feed.js";
import type { OrthancChange, OrthancChanges, OrthancClient } from "../../src/orthanc/rest.js";

/** Orthanc's /changes over a list, with its exclusive `since` and paging. */
function fakeOrthanc(changes: OrthancChange[]): OrthancClient {
  return {
    async changes(since: number, limit: number): Promise<OrthancChanges> {
      const page = changes.filter((c) => c.Seq > since).slice(0, limit);
      const last = page.length > 0 ? page[page.length - 1]!.Seq : Math.max(since, changes.at(-1)?.Seq ?? 0);
      return { Changes: page, Done: page.length < limit, Last: last };
    },
    async lastChange(): Promise<number> {
      return changes.at(-1)?.Seq ?? 0;
    },
  } as unknown as OrthancClient;
}

const change = (Seq: number, ChangeType: string, ID: string, ResourceType = "Series"): OrthancChange =>
  ({ Seq, ChangeType, ID, ResourceType, Path: `/x/${ID}`, Date: "20261123T000000" }) as OrthancChange;

describe("change feed", () => {
  let dir: string;
  let ledger: Ledger;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "feed-"));
    ledger = new Ledger(dir);
  });
  afterEach(() => {
    ledger.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("records series events page by page and keeps the cursor", async () => {
    const changes = [
      change(1, "NewInstance", "i1", "Instance"),
      change(2, "NewSeries", "s1"),
      change(3, "NewStudy", "st1", "Study"),
      change(5, "StableSeries", "s1"), // Seq has gaps after deletions
      change(6, "NewSeries", "s2"),
    ];
    const feed = new ChangeFeed(fakeOrthanc(changes), ledger.feed, { pollIntervalMs: 10, pageSize: 2 });
    await feed.readAvailable();
    expect(ledger.feed.cursor()).toBe(6);
    expect(ledger.feed.watchedSeries(WatchState.Stable)).toEqual(["s1"]);
    expect(ledger.feed.watchedSeries(WatchState.AwaitingStable)).toEqual(["s2"]);
  });

  it("resumes after the stored cursor on restart", async () => {
    ledger.feed.setCursor(5);
    const feed = new ChangeFeed(fakeOrthanc([change(2, "NewSeries", "old"), change(6, "NewSeries", "s2")]), ledger.feed, {
      pollIntervalMs: 10,
      pageSize: 100,
    });
    await feed.readAvailable();
    expect(ledger.feed.watchedSeries(WatchState.AwaitingStable)).toEqual(["s2"]);
  });

  it("starts again from 0 when Orthanc's database was reset", async () => {
    ledger.feed.setCursor(500);
    const resyncs: string[] = [];
    const feed = new ChangeFeed(fakeOrthanc([change(1, "NewSeries", "fresh"), change(2, "StableSeries", "fresh")]), ledger.feed, {
      pollIntervalMs: 10,
      pageSize: 100,
      onResync: (why) => resyncs.push(why),
    });
    await feed.readAvailable();
    expect(ledger.feed.cursor()).toBe(2);
    expect(ledger.feed.watchedSeries(WatchState.Stable)).toEqual(["fresh"]);
    expect(resyncs).toEqual(["Orthanc's database was reset"]); // and a reconcile is asked for
    await feed.readAvailable();
    expect(resyncs).toHaveLength(1); // once: the cursor is no longer ahead
  });

  it("asks for a reconcile when Orthanc answers again after the feed could not read it", async () => {
    const orthanc = fakeOrthanc([change(1, "NewSeries", "s1")]);
    let down = true;
    const flaky = {
      changes: (since: number, limit: number) => (down ? Promise.reject(new Error("down")) : orthanc.changes(since, limit)),
      lastChange: () => (down ? Promise.reject(new Error("down")) : orthanc.lastChange()),
    } as unknown as OrthancClient;
    const resyncs: string[] = [];
    const feed = new ChangeFeed(flaky, ledger.feed, { pollIntervalMs: 5, pageSize: 100, onResync: (why) => resyncs.push(why) });
    feed.start();
    await new Promise((r) => setTimeout(r, 30));
    expect(resyncs).toEqual([]);
    down = false;
    for (let i = 0; i < 100 && resyncs.length === 0; i += 1) await new Promise((r) => setTimeout(r, 10));
    await feed.stop();
    expect(resyncs).toEqual(["Orthanc reachable again after the change feed could not read it"]);
    expect(ledger.feed.cursor()).toBe(1);
  });
});
