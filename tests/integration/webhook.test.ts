/**
 * Result notification as a RIS receives it (issue 16): a real Orthanc, the built service with a webhook configured,
 * and a receiver on loopback that answers 500 to the first request and 200 after. A 20-slice series ends done; the
 * receiver gets the retry, and exactly one notification is accepted; both attempts carry the same delivery id and a
 * signature that verifies with the shared secret, computed here with node:crypto as any receiver would; the payload
 * names the study, the source and the stored derived series, and no patient data. /metrics and the job's timeline
 * count the delivery. A re-run's end is notified once more, under its own delivery id.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { data } from "dcmjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ResultNotification } from "../../src/notify/result-notification.js";
import { requireCtData } from "../helpers/ct-data.js";
import { contiguousSubset, type SeriesSubset } from "../helpers/ct-subset.js";
import { OPERATOR_TEST_PIPELINES, startService, waitFor, type TestService } from "../helpers/ct-service.js";
import { startOrthanc, type TestOrthanc } from "../helpers/orthanc.js";
import { requireOrthanc } from "../helpers/system-tools.js";
import { startWebhookReceiver, type ReceivedNotification, type WebhookReceiver } from "../helpers/webhook-receiver.js";

const ready = requireCtData("lidc-idri-0002-ncct") && requireOrthanc();
const SECRET = "integration-shared-secret-4f1c9a";
const RETRY_DELAY_SECONDS = 1;

interface Job { id: number; state: string; outputSeriesUid: string | null; sourceOrthancId: string }

/** What a receiver does with the raw bytes: HMAC-SHA256 of `${timestamp}.${body}` under the shared secret. */
function signatureHolds(request: ReceivedNotification, secret: string): boolean {
  const timestamp = request.headers["x-ct-enhance-timestamp"] as string;
  const received = Buffer.from(String(request.headers["x-ct-enhance-signature"]));
  const expected = Buffer.from(`sha256=${createHmac("sha256", secret).update(`${timestamp}.`).update(request.body).digest("hex")}`);
  return received.length === expected.length && timingSafeEqual(received, expected) && Math.abs(Date.now() / 1000 - Number(timestamp)) < 300;
}

interface SourceHeader {
  StudyInstanceUID: string;
  SeriesInstanceUID: string;
  PatientName: string;
  PatientID: string;
  PatientBirthDate: string;
}

/** The source's identity as its DICOM header has it, to show none of the patient's part reaches the payload. */
function sourceHeader(file: string): SourceHeader {
  const bytes = readFileSync(file);
  const dict = data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer, { untilTag: "7FE00010" });
  const value = (tag: string): string => {
    const first = (dict.dict[tag]?.Value as unknown[] | undefined)?.[0];
    return typeof first === "object" && first !== null ? String((first as { Alphabetic?: string }).Alphabetic ?? "") : String(first ?? "");
  };
  return {
    StudyInstanceUID: value("0020000D"), SeriesInstanceUID: value("0020000E"),
    PatientName: value("00100010"), PatientID: value("00100020"), PatientBirthDate: value("00100030"),
  };
}

describe.runIf(ready)("result notification webhook (real Orthanc, built service, loopback receiver)", () => {
  let orthanc: TestOrthanc;
  let service: TestService;
  let subset: SeriesSubset;
  let receiver: WebhookReceiver;
  let job: Job;

  beforeAll(async () => {
    subset = contiguousSubset("lidc-idri-0002-ncct", 20); // the fixture pipeline's rule wants at least 20 instances
    receiver = await startWebhookReceiver((n) => (n === 0 ? 500 : 200));
    orthanc = await startOrthanc({ stableAgeSeconds: 2 });
    service = await startService(orthanc, {
      ...OPERATOR_TEST_PIPELINES,
      CT_ENHANCE_WEBHOOK_URL: receiver.url,
      CT_ENHANCE_WEBHOOK_SECRET: SECRET,
      CT_ENHANCE_WEBHOOK_RETRY_DELAY_SECONDS: String(RETRY_DELAY_SECONDS),
      CT_ENHANCE_WEBHOOK_TIMEOUT_MS: "5000",
    });
    await orthanc.uploadFolder(subset.folder);
    job = await waitFor("the 20-slice job to be done", async () => {
      const jobs = await service.api<Job[]>("/jobs");
      if (jobs[0] && ["failed", "rejected", "skipped"].includes(jobs[0].state)) throw new Error(`job ${jobs[0].state}`);
      return jobs[0]?.state === "done" ? jobs[0] : undefined;
    }, 90_000, service);
    await waitFor("the receiver to accept a notification", async () => (receiver.received.some((r) => r.answered === 200) ? true : undefined), 30_000, service);
    // Long enough for a wrong extra attempt to arrive: several retry delays and notifier polls.
    await new Promise((r) => setTimeout(r, 3 * RETRY_DELAY_SECONDS * 1000 + 1500));
  }, 180_000);

  afterAll(async () => {
    await service?.stop();
    service?.remove();
    await orthanc?.stop();
    await receiver?.close();
    subset?.remove();
  });

  it("retries after the 500 and is accepted exactly once, both attempts one delivery, signed with the shared secret", () => {
    expect(receiver.received.map((r) => r.answered)).toEqual([500, 200]);
    const [first, second] = receiver.received;
    expect(first!.headers["x-ct-enhance-event"]).toBe("job.done");
    expect(second!.headers["x-ct-enhance-delivery"]).toBe(first!.headers["x-ct-enhance-delivery"]);
    expect(second!.headers["x-ct-enhance-attempt"]).toBe("2");
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(RETRY_DELAY_SECONDS * 1000 - 50);
    expect(second!.body.equals(first!.body)).toBe(true);
    for (const request of receiver.received) {
      expect(signatureHolds(request, SECRET)).toBe(true);
      expect(signatureHolds(request, `${SECRET}-not`)).toBe(false);
      expect(signatureHolds({ ...request, body: Buffer.from(request.body.toString().replace("job.done", "job.fail")) }, SECRET)).toBe(false);
    }
  });

  it("tells the study, the source, the model and the stored derived series, and nothing of the patient", () => {
    const text = receiver.received[1]!.body.toString();
    const payload = JSON.parse(text) as ResultNotification;
    const source = sourceHeader(subset.files[0]!);
    expect(payload).toMatchObject({
      schema: "ct-enhance.result-notification/1",
      event: "job.done",
      deliveryId: receiver.received[1]!.headers["x-ct-enhance-delivery"],
      job: { id: job.id, state: "done", pipeline: "ncct-syncta", run: 1, attempts: 1, forced: false },
      model: { id: "syncta-any-ct" },
      study: { studyInstanceUID: source.StudyInstanceUID },
      source: { seriesInstanceUID: source.SeriesInstanceUID, orthancSeriesId: job.sourceOrthancId },
      outputs: [{ kind: "derived-ct", seriesInstanceUID: job.outputSeriesUid, sopClassUID: "1.2.840.10008.5.1.4.1.1.2", instances: 20 }],
      findings: null,
      reason: null,
    });
    expect(Date.parse(payload.occurredAt)).toBeGreaterThan(Date.parse(payload.job.createdAt));
    for (const phi of [source.PatientName, source.PatientID, source.PatientBirthDate].filter((v) => v.length > 0)) {
      expect(text).not.toContain(phi);
    }
  });

  it("counts the delivery and its retry in /metrics and the job's timeline", async () => {
    const metrics = await (await fetch(`${service.apiUrl}/metrics`, { headers: { Authorization: `Bearer ${service.token}` } })).text();
    expect(metrics).toMatch(/^ct_enhance_webhook_deliveries_total\{outcome="delivered"\} 1$/m);
    expect(metrics).toMatch(/^ct_enhance_webhook_deliveries_total\{outcome="failed"\} 0$/m);
    expect(metrics).toMatch(/^ct_enhance_webhook_retries_total 1$/m);
    expect(metrics).toMatch(/^ct_enhance_webhook_pending 0$/m);
    const detail = await service.api<{ events: { kind: string; message: string }[] }>(`/jobs/${job.id}`);
    expect(detail.events.filter((e) => e.kind === "notified").map((e) => e.message))
      .toEqual([expect.stringMatching(/^job\.done delivered \(job-\d+-done-\d+, HTTP 200, attempt 2\)$/)]);
    expect(service.log()).not.toContain(SECRET);
  });

  it("notifies a re-run's end once more, under a new delivery id", async () => {
    const answer = await fetch(`${service.apiUrl}/series/${job.sourceOrthancId}/rerun`, {
      method: "POST",
      headers: { Authorization: `Bearer ${service.token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ requestedBy: "webhook test" }),
    });
    expect(answer.status).toBe(202);
    await waitFor("the re-run's notification", async () => (receiver.received.length >= 3 ? true : undefined), 90_000, service);
    await new Promise((r) => setTimeout(r, 1500));
    expect(receiver.received.map((r) => r.answered)).toEqual([500, 200, 200]);
    const rerun = JSON.parse(receiver.received[2]!.body.toString()) as ResultNotification;
    expect(rerun).toMatchObject({ event: "job.done", job: { id: job.id, run: 2 } });
    expect(rerun.deliveryId).not.toBe(receiver.received[0]!.headers["x-ct-enhance-delivery"]);
    expect(rerun.outputs[0]?.seriesInstanceUID).not.toBe(job.outputSeriesUid);
    expect(signatureHolds(receiver.received[2]!, SECRET)).toBe(true);
  }, 120_000);
});
