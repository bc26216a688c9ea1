/**
 * A job's end and its result notification are committed together: one outbox row per end a receiver hears of (done,
 * failed for good, rejected), none for a retry-wait, a skip or a transition that did not happen, a new one for each
 * end of a re-run; the body is the payload as it will be signed, with UIDs and no patient data; rows survive a
 * restart and a job's notifications leave in order.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Ledger } from "../../src/jobs/ledger.js";
import type { ResultNotification } from "../../src/notify/result-notification.js";
import { endJob, NO_RESULT, type JobResult } from "../../src/pipeline/job-notification.js";

const key = { sourceOrthancId: "6b2c1f0e-0a1b2c3d-4e5f6a7b-8c9d0e1f-2a3b4c5d", sourceSeriesUid: "1.2.826.0.1.3680043.2.1125.1.2", studyUid: "1.2.826.0.1.3680043.2.1125.1", pipeline: "ncct-syncta", modelId: "syncta-unet-small", modelVersion: "0.2.0" };
const derived: JobResult = {
  outputs: [{ kind: "derived-ct", seriesInstanceUID: "2.25.1234", sopClassUID: "1.2.840.10008.5.1.4.1.1.2", instances: 24 }],
  findings: null,
};
const detected: JobResult = {
  outputs: [
    { kind: "sr", seriesInstanceUID: "2.25.5", sopClassUID: "1.2.840.10008.5.1.4.1.1.88.34", instances: 1 },
    { kind: "seg", seriesInstanceUID: "2.25.6", sopClassUID: "1.2.840.10008.5.1.4.1.1.66.4", instances: 1 },
  ],
  findings: {
    count: 1,
    scope: "scope: nodules of 3-30 mm longest diameter inside the lungs",
    items: [{
      trackingId: "Nodule 1", trackingUID: "2.25.7", type: { code: "27925004", scheme: "SCT", meaning: "Nodule" },
      site: { code: "39607008", scheme: "SCT", meaning: "Lung" }, longestDiameterMm: 8.4, volumeMm3: 190, probability: 0.91,
      centroidPatientMm: [-80.2, 20.5, -150],
    }],
  },
};

/** Every key of a JSON value, at any depth. */
function keysOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(keysOf);
  if (value && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => [k, ...keysOf(v)]);
  return [];
}

describe("job ends and their result notifications", () => {
  let dir: string;
  let ledger: Ledger;
  const bodies = (): ResultNotification[] => ledger.notifications.list().map((n) => JSON.parse(n.body) as ResultNotification);
  const startedJob = (): number => {
    const { job } = ledger.jobs.create(key);
    expect(ledger.jobs.start(job.id)).toBe(true);
    return job.id;
  };

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "notify-"));
    ledger = new Ledger(dir);
  });
  afterEach(() => {
    ledger.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("queues one job.done with the study, source, model and outputs, in the end's own transaction", () => {
    const id = startedJob();
    expect(endJob(ledger, true, id, () => ledger.jobs.finish(id, "derived series stored"), derived)).toBe(true);
    const [row] = ledger.notifications.list();
    expect(ledger.notifications.list()).toHaveLength(1);
    expect(row).toMatchObject({ jobId: id, event: "job.done", state: "pending", attempts: 0, deliveryId: `job-${id}-done-${row!.id}` });
    const body = JSON.parse(row!.body) as ResultNotification;
    expect(body).toMatchObject({
      schema: "ct-enhance.result-notification/1", event: "job.done", deliveryId: row!.deliveryId,
      job: { id, state: "done", pipeline: "ncct-syncta", run: 1, attempts: 1, forced: false },
      model: { id: "syncta-unet-small", version: "0.2.0" },
      study: { studyInstanceUID: key.studyUid },
      source: { seriesInstanceUID: key.sourceSeriesUid, orthancSeriesId: key.sourceOrthancId },
      outputs: derived.outputs, findings: null, reason: null,
      software: { name: "ct-enhance" },
    });
    expect(body.occurredAt).toBe(ledger.jobs.get(id)!.updatedAt);
    expect(keysOf(body).filter((k) => /patient(name|id|birth)|birth|sex|^dob$/i.test(k))).toEqual([]);
  });

  it("tells of findings: count, scope, and per finding its type, site, size and centroid", () => {
    const id = startedJob();
    endJob(ledger, true, id, () => ledger.jobs.finish(id, "1 finding(s)"), detected);
    const [body] = bodies();
    expect(body!.outputs.map((o) => o.kind)).toEqual(["sr", "seg"]);
    expect(body!.findings).toEqual(detected.findings);
  });

  it("queues nothing for a retry-wait, then one job.failed for the final failure, with its stage and cause", () => {
    const id = startedJob();
    const error = { stage: "fetch", message: "Orthanc unreachable: ECONNREFUSED", retryable: true };
    endJob(ledger, true, id, () => ledger.jobs.fail(id, error, new Date(Date.now() + 60_000)), NO_RESULT);
    expect(ledger.jobs.get(id)!.state).toBe("retry-wait");
    expect(ledger.notifications.list()).toEqual([]);
    expect(ledger.jobs.start(id)).toBe(true);
    endJob(ledger, true, id, () => ledger.jobs.fail(id, error, null), NO_RESULT);
    expect(bodies()).toHaveLength(1);
    expect(bodies()[0]).toMatchObject({ event: "job.failed", job: { state: "failed", attempts: 2 }, outputs: [], reason: error });
  });

  it("gives a rejection's checks with the measured figures and limits", () => {
    const id = startedJob();
    const checks = [
      { measure: "tissueMeanChangeHu" as const, value: 52.1, min: -10, max: 10, passed: false, text: "soft tissue outside the blood pool changed by +52.1 HU on average (limit -10..10 HU)" },
      { measure: "bodyVoxelsChangedPercent" as const, value: 1.2, max: 5, passed: true, text: "1.2% of body voxels changed by more than 100 HU (limit 5%)" },
    ];
    endJob(ledger, true, id, () => ledger.jobs.reject(id, checks[0]!.text), { ...NO_RESULT, checks });
    expect(bodies()[0]).toMatchObject({
      event: "job.rejected", outputs: [], findings: null,
      reason: { stage: "check", message: checks[0]!.text, retryable: false, checks },
    });
  });

  it("queues nothing for a skip, a transition another caller won, or with notification off", () => {
    const skipped = startedJob();
    endJob(ledger, true, skipped, () => ledger.jobs.skip(skipped, "no lungs in the volume"), NO_RESULT);
    expect(endJob(ledger, true, skipped, () => ledger.jobs.finish(skipped, "too late"), derived)).toBe(false);
    const other = ledger.jobs.create({ ...key, pipeline: "other" }).job.id;
    ledger.jobs.start(other);
    expect(endJob(ledger, false, other, () => ledger.jobs.finish(other, "done"), derived)).toBe(true);
    expect(ledger.notifications.list()).toEqual([]);
  });

  it("gives each end of a re-run its own notification: failed, then done after the re-run", () => {
    const id = startedJob();
    endJob(ledger, true, id, () => ledger.jobs.fail(id, { stage: "infer", message: "out of memory", retryable: false }, null), NO_RESULT);
    expect(ledger.jobs.requeue(id, "operator re-run")).toBe(true);
    expect(ledger.jobs.start(id)).toBe(true);
    endJob(ledger, true, id, () => ledger.jobs.finish(id, "stored"), derived);
    const rows = ledger.notifications.list();
    expect(rows.map((r) => r.event)).toEqual(["job.failed", "job.done"]);
    expect(new Set(rows.map((r) => r.deliveryId)).size).toBe(2);
    expect(bodies().map((b) => b.job.run)).toEqual([1, 2]);
    // A receiver hears a job's ends in order: the second waits while the first is pending.
    expect(ledger.notifications.due().map((n) => n.event)).toEqual(["job.failed"]);
    ledger.notifications.delivered(rows[0]!.id, 1, "HTTP 200");
    expect(ledger.notifications.due().map((n) => n.event)).toEqual(["job.done"]);
  });

  it("rolls the end back with the notification: neither happens alone", () => {
    const id = startedJob();
    expect(() => ledger.transaction(() => {
      ledger.jobs.finish(id, "stored");
      throw new Error("disk full");
    })).toThrow("disk full");
    expect(ledger.jobs.get(id)!.state).toBe("running");
  });

  it("keeps pending notifications across a restart, and counts outcomes apart from retention", () => {
    const id = startedJob();
    endJob(ledger, true, id, () => ledger.jobs.finish(id, "stored"), derived);
    ledger.close();
    ledger = new Ledger(dir);
    const [due] = ledger.notifications.due();
    expect(due?.event).toBe("job.done");
    ledger.notifications.retryAt(due!.id, 1, "HTTP 503", new Date(Date.now() - 1));
    ledger.notifications.delivered(due!.id, 2, "HTTP 200", new Date(Date.now() - 2 * 86_400_000));
    ledger.notifications.delivered(due!.id, 3, "HTTP 200"); // settled once only
    expect(ledger.notifications.totals()).toEqual({ delivered: 1, failed: 0, retried: 1 });
    expect(ledger.notifications.deleteSettledBefore(new Date(Date.now() - 86_400_000))).toBe(1);
    expect(ledger.notifications.list()).toEqual([]);
    expect(ledger.notifications.totals().delivered).toBe(1);
  });
});
