import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { WatchState } from "../../src/jobs/feed-records.js";
import { Ledger } from "../../src/jobs/ledger.js";
import type { ModelRegistry } from "../../src/models/registry.js";
import type { OrthancClient, OrthancSeries } from "../../src/orthanc/rest.js";
import type { PipelineDefinition } from "../../src/pipeline/pipelines.js";
import { parseOrthancTime, watchSeriesOnce } from "../../src/pipeline/series-watcher.js";

const pipeline: PipelineDefinition = {
  id: "ncct-test",
  description: "",
  model: "m",
  outputLabel: "Test",
  enabled: true,
  select: [{ tag: "Modality", equals: "CT" }, { tag: "ContrastBolusAgent", empty: true }],
};
const models = { get: () => ({ manifest: { id: "m", version: "1" } }), has: () => true } as unknown as ModelRegistry;

function fakeOrthanc(series: Record<string, Partial<OrthancSeries> & { tags: Record<string, unknown> }>): OrthancClient {
  return {
    async series(id: string) {
      const s = series[id];
      if (!s) return undefined;
      return { ID: id, Instances: [`${id}-i1`], IsStable: false, LastUpdate: "20991231T000000", ParentStudy: "st", ...s,
        MainDicomTags: { SeriesInstanceUID: `uid-${id}` } };
    },
    async study() {
      return { ID: "st", MainDicomTags: { StudyInstanceUID: "1.2.3" }, Series: [] };
    },
    async instanceTags(instance: string) {
      return series[instance.replace(/-i1$/, "")]!.tags;
    },
  } as unknown as OrthancClient;
}

describe("series watcher", () => {
  let dir: string;
  let ledger: Ledger;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "watcher-"));
    ledger = new Ledger(dir);
  });
  afterEach(() => {
    ledger.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const deps = (orthanc: OrthancClient) => ({ orthanc, ledger, models, pipelines: [pipeline], stableAgeSeconds: 60 });

  it("waits for a NewSeries until Orthanc says it is stable, then selects it once", async () => {
    const orthanc = fakeOrthanc({ a: { IsStable: false, tags: { Modality: "CT" } } });
    ledger.feed.recordChanges([{ orthancId: "a", stable: false }], 1);
    expect(await watchSeriesOnce(deps(orthanc))).toBe(0);
    expect(ledger.jobs.list()).toHaveLength(0);
    const stable = fakeOrthanc({ a: { IsStable: true, tags: { Modality: "CT" } } });
    expect(await watchSeriesOnce(deps(stable))).toBe(1);
    expect(await watchSeriesOnce(deps(stable))).toBe(0);
    expect(ledger.jobs.list()).toHaveLength(1);
    expect(ledger.feed.watchedSeries(WatchState.Decided)).toEqual(["a"]);
  });

  it("counts a quiet series as stable after stableAgeSeconds even if Orthanc forgot it (restart)", async () => {
    const orthanc = fakeOrthanc({ b: { IsStable: false, LastUpdate: "20261123T100000", tags: { Modality: "CT" } } });
    ledger.feed.recordChanges([{ orthancId: "b", stable: false }], 1);
    expect(await watchSeriesOnce(deps(orthanc), new Date(2026, 10, 23, 10, 0, 30))).toBe(0);
    expect(await watchSeriesOnce(deps(orthanc), new Date(2026, 10, 23, 10, 1, 1))).toBe(1);
  });

  it("records why a series is skipped, and never selects ct-enhance's own output", async () => {
    const orthanc = fakeOrthanc({
      c: { IsStable: true, tags: { Modality: "CT", ContrastBolusAgent: "IV" } },
      d: { IsStable: true, tags: { Modality: "CT", ContributingEquipmentSequence: [{ Manufacturer: "ct-enhance" }] } },
    });
    ledger.feed.recordChanges([{ orthancId: "c", stable: true }, { orthancId: "d", stable: true }], 2);
    expect(await watchSeriesOnce(deps(orthanc))).toBe(0);
    expect(ledger.feed.decisions({ orthancSeriesId: "c" })[0]).toMatchObject({
      decision: "skipped",
      reason: "ContrastBolusAgent is 'IV' (rule: must be empty)",
    });
    expect(ledger.feed.decisions({ orthancSeriesId: "d" })[0]?.reason).toMatch(/written by ct-enhance/);
  });

  it("forgets series Orthanc no longer has", async () => {
    ledger.feed.recordChanges([{ orthancId: "gone", stable: false }], 1);
    await watchSeriesOnce(deps(fakeOrthanc({})));
    expect(ledger.feed.watchedSeries(WatchState.Gone)).toEqual(["gone"]);
  });

  it("reads Orthanc's LastUpdate", () => {
    expect(parseOrthancTime("20261123T232822")?.getHours()).toBe(23);
    expect(parseOrthancTime("garbage")).toBeUndefined();
  });
});
