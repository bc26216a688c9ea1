/**
 * The job queue's volumes between jobs (src/service/held-volumes.ts): the last volume serves the next job of the same
 * series state only, a prefetched one the job it was fetched for, anything else is let go before a new fetch; a
 * volume a plan writes over is never handed on; a prefetch is refused when the two volumes would be over the volume
 * limit, and a prefetch that fails only leaves a note (the job fetches itself). The fetch itself is the runner's
 * (tests/integration/lanes.test.ts runs it against Orthanc).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Config } from "../../src/config.js";
import type { CtVolume } from "../../src/dicom/ct-volume.js";
import type { Job } from "../../src/jobs/job-records.js";
import { Ledger } from "../../src/jobs/ledger.js";
import type { OrthancClient } from "../../src/orthanc/rest.js";
import type { PipelineContext } from "../../src/pipeline/runner.js";
import { seriesStateKey } from "../../src/pipeline/stages/source-volumes.js";
import { HeldVolumes } from "../../src/service/held-volumes.js";

const volume = (slices: number, shared = true): CtVolume =>
  ({ slices, rows: 512, columns: 512, hu: new Float32Array(shared ? new SharedArrayBuffer(slices * 512 * 512 * 4) : new ArrayBuffer(slices * 512 * 512 * 4)) }) as unknown as CtVolume;

describe("held volumes", () => {
  let dir: string;
  let ledger: Ledger;
  let orthanc: Partial<OrthancClient>;
  let held: HeldVolumes;
  const jobFor = (series: string): Job =>
    ledger.jobs.create({ sourceOrthancId: series, sourceSeriesUid: `uid-${series}`, studyUid: "1.2", pipeline: `p-${Math.random()}`, modelId: "m", modelVersion: "1" }).job;
  const until = async (check: () => boolean) => {
    for (let i = 0; i < 200 && !check(); i += 1) await new Promise((r) => setTimeout(r, 5));
  };

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "held-volumes-"));
    ledger = new Ledger(dir);
    orthanc = {};
    const ctx = { ledger, orthanc, config: { limits: { maxVolumeMiB: 150 } } as Config } as unknown as PipelineContext;
    held = new HeldVolumes(() => ctx);
  });
  afterEach(async () => {
    await held.close();
    ledger.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("hands the last volume to the next job of the same series state only", () => {
    const first = jobFor("s1");
    const key = seriesStateKey("s1", { Instances: ["i2", "i1"], LastUpdate: "20261130T120000" });
    const assembled = volume(10);
    expect(held.take(key)).toBeUndefined();
    held.keep(key, assembled, first);
    expect(held.take(key)).toEqual({ volume: assembled, how: "reused", fetchedFor: first.id });
    // The same instances listed in another order are the same series; one more instance, or a later update, is not.
    expect(seriesStateKey("s1", { Instances: ["i1", "i2"], LastUpdate: "20261130T120000" })).toBe(key);
    const grown = seriesStateKey("s1", { Instances: ["i1", "i2", "i3"], LastUpdate: "20261130T120000" });
    expect(held.take(grown)).toBeUndefined();
    expect(held.take(key)).toBeUndefined(); // let go when a job asked for another series state
    held.keep(key, assembled, first);
    held.release(); // the queue found nothing to run
    expect(held.take(key)).toBeUndefined();
  });

  it("never hands on a volume a plan wrote over, nor one whose voxels moved to the worker", () => {
    const job = jobFor("s1");
    const overwritten = volume(10);
    held.keep("k", overwritten, job);
    held.forget(overwritten);
    expect(held.take("k")).toBeUndefined();
    held.keep("k", volume(10, false), job);
    expect(held.take("k")).toBeUndefined();
  });

  it("does not fetch ahead for the same series, or when the two volumes would be over the limit", async () => {
    const running = jobFor("s1");
    ledger.jobs.start(running.id);
    const sameSeries = jobFor("s1");
    held.inferring(running, volume(10));
    await held.close();
    expect(ledger.jobs.events(sameSeries.id).some((e) => e.kind.startsWith("prefetch"))).toBe(false); // the volume in hand serves it

    ledger.jobs.finish(running.id, "ok");
    const now = ledger.jobs.next()!;
    expect(now.id).toBe(sameSeries.id);
    ledger.jobs.start(now.id);
    const next = jobFor("s2");
    orthanc.series = (async () => ({ Instances: Array.from({ length: 100 }, (_, i) => `i${i}`), LastUpdate: "x" })) as never;
    orthanc.instanceTags = (async () => ({ Rows: 512, Columns: 512 })) as never;
    held.inferring(now, volume(60)); // 60 MiB in hand + 100 MiB ahead > 150 MiB
    await until(() => ledger.jobs.events(next.id).some((e) => e.kind === "prefetch" && e.message.startsWith("not")));
    expect(ledger.jobs.events(next.id).map((e) => e.message)).toContainEqual(
      "not fetched ahead: its 100 MiB volume and the running job's 60 MiB would be over limits.maxVolumeMiB (150 MiB)");
  });

  it("leaves a note and fetches nothing ahead when the prefetch fails", async () => {
    const running = jobFor("s1");
    ledger.jobs.start(running.id);
    const next = jobFor("s2");
    orthanc.series = (async () => {
      throw new Error("Orthanc cannot be reached");
    }) as never;
    held.inferring(running, volume(10));
    await held.close();
    expect(ledger.jobs.events(next.id).at(-1)?.message).toBe("not fetched ahead (the job fetches it itself): Orthanc cannot be reached");
    expect(held.take(seriesStateKey("s2", { Instances: [] }))).toBeUndefined();
  });
});
