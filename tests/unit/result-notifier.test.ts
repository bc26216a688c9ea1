/**
 * The notifier against a receiver on loopback, with short delays: a 500 is retried and the next 200 ends it (two
 * requests, one delivery id, each signed afresh and verifiable); a 400 is given up at once; a receiver that is down or
 * never answers is tried maxAttempts times; each outcome lands in the outbox, its totals and the job's timeline; the
 * secret never reaches the log.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Ledger } from "../../src/jobs/ledger.js";
import { signatureProblem } from "../../src/notify/signature.js";
import { endJob } from "../../src/pipeline/job-notification.js";
import { ResultNotifier, type WebhookSettings } from "../../src/service/result-notifier.js";
import { startWebhookReceiver, type WebhookReceiver } from "../helpers/webhook-receiver.js";

const secret = "unit-test-secret-0123456789";
const key = { sourceOrthancId: "o1", sourceSeriesUid: "1.2.3.4", studyUid: "1.2.3", pipeline: "ncct-syncta", modelId: "m", modelVersion: "1" };
const result = { outputs: [{ kind: "derived-ct" as const, seriesInstanceUID: "2.25.9", sopClassUID: "1.2.840.10008.5.1.4.1.1.2", instances: 3 }], findings: null };

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("result notifier", () => {
  let dir: string;
  let ledger: Ledger;
  let receiver: WebhookReceiver | undefined;
  let notifier: ResultNotifier | undefined;
  let logged: string;

  const settings = (url: string, overrides: Partial<WebhookSettings> = {}): WebhookSettings =>
    ({ url, secret, timeoutMs: 2000, maxAttempts: 4, retryDelaySeconds: 0.05, maxRetryDelaySeconds: 1, ...overrides });
  const jobDone = (): number => {
    const { job } = ledger.jobs.create(key);
    ledger.jobs.start(job.id);
    endJob(ledger, true, job.id, () => ledger.jobs.finish(job.id, "stored"), result);
    return job.id;
  };
  const settled = () => until("the notification to settle", () => ledger.notifications.list().find((n) => n.state !== "pending"));

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "notifier-"));
    ledger = new Ledger(dir);
    logged = "";
    vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
      logged += chunk.toString();
      return true;
    });
  });
  afterEach(async () => {
    await notifier?.stop();
    notifier = undefined;
    await receiver?.close();
    receiver = undefined;
    vi.restoreAllMocks();
    ledger.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("retries a 500 and delivers on the 200: one delivery id, every attempt signed and verifiable", async () => {
    receiver = await startWebhookReceiver((n) => (n === 0 ? 500 : 200));
    const jobId = jobDone();
    notifier = new ResultNotifier(ledger, settings(receiver.url), 10);
    notifier.start();
    const done = await settled();
    expect(done).toMatchObject({ state: "delivered", attempts: 2, lastResult: "HTTP 200" });
    await new Promise((r) => setTimeout(r, 150)); // nothing more comes
    expect(receiver.received.map((r) => r.answered)).toEqual([500, 200]);
    for (const [i, request] of receiver.received.entries()) {
      expect(request.headers).toMatchObject({
        "content-type": "application/json; charset=utf-8",
        "x-ct-enhance-event": "job.done",
        "x-ct-enhance-delivery": done.deliveryId,
        "x-ct-enhance-attempt": String(i + 1),
      });
      expect(request.body.toString()).toBe(done.body);
      expect(signatureProblem({
        secret, body: request.body,
        timestamp: request.headers["x-ct-enhance-timestamp"] as string,
        signature: request.headers["x-ct-enhance-signature"] as string,
      })).toBeUndefined();
    }
    expect(ledger.notifications.totals()).toEqual({ delivered: 1, failed: 0, retried: 1 });
    expect(ledger.jobs.events(jobId).filter((e) => e.kind === "notified").map((e) => e.message))
      .toEqual([`job.done delivered (${done.deliveryId}, HTTP 200, attempt 2)`]);
    expect(logged).toContain("result notification delivered");
    expect(logged).not.toContain(secret);
  });

  it("gives up at once on a 400 (retrying cannot mend it), logged and counted", async () => {
    receiver = await startWebhookReceiver(() => 400);
    const jobId = jobDone();
    notifier = new ResultNotifier(ledger, settings(receiver.url), 10);
    notifier.start();
    expect(await settled()).toMatchObject({ state: "failed", attempts: 1, lastResult: "HTTP 400" });
    await new Promise((r) => setTimeout(r, 150));
    expect(receiver.received).toHaveLength(1);
    expect(ledger.notifications.totals()).toEqual({ delivered: 0, failed: 1, retried: 0 });
    expect(ledger.jobs.events(jobId).at(-1)).toMatchObject({ kind: "notification-failed", message: expect.stringMatching(/refused by the receiver \(HTTP 400\), not retried/) });
    expect(logged).toMatch(/"level":"error".*result notification given up/);
    expect(logged).not.toContain(secret);
  });

  it("sends a URL's user:password as HTTP basic authentication, not in the URL", async () => {
    receiver = await startWebhookReceiver();
    jobDone();
    notifier = new ResultNotifier(ledger, settings(receiver.url.replace("http://", "http://ris-user:p%40ss@")), 10);
    notifier.start();
    expect(await settled()).toMatchObject({ state: "delivered" });
    expect(receiver.received[0]!.headers.authorization).toBe(`Basic ${Buffer.from("ris-user:p@ss").toString("base64")}`);
    expect(logged).not.toContain("p%40ss");
  });

  it("tries a receiver that is down maxAttempts times, then gives up; credentials in its URL never logged", async () => {
    const down = await startWebhookReceiver();
    const url = down.url.replace("http://", "http://ris-user:ris-password@");
    await down.close(); // nothing listens on that port any more
    jobDone();
    notifier = new ResultNotifier(ledger, settings(url, { maxAttempts: 3 }), 10);
    notifier.start();
    const failed = await settled();
    expect(failed).toMatchObject({ state: "failed", attempts: 3 });
    expect(failed.lastResult).toMatch(/^no answer: /);
    expect(ledger.notifications.totals()).toEqual({ delivered: 0, failed: 1, retried: 2 });
    expect(logged).not.toContain("ris-password");
    expect(logged).not.toContain(secret);
  });

  it("counts a receiver that never answers as a timeout and tries again", async () => {
    receiver = await startWebhookReceiver((n) => (n === 0 ? "hang" : 204));
    jobDone();
    notifier = new ResultNotifier(ledger, settings(receiver.url, { timeoutMs: 200 }), 10);
    notifier.start();
    const done = await settled();
    expect(done).toMatchObject({ state: "delivered", attempts: 2, lastResult: "HTTP 204" });
    expect(ledger.notifications.totals().retried).toBe(1);
  });

  it("stops at once while a receiver hangs, leaving the notification pending and the attempt uncounted", async () => {
    receiver = await startWebhookReceiver(() => "hang");
    jobDone();
    notifier = new ResultNotifier(ledger, settings(receiver.url, { timeoutMs: 60_000 }), 10);
    notifier.start();
    await until("the attempt to reach the receiver", () => (receiver!.received.length > 0 ? true : undefined));
    const started = Date.now();
    await notifier.stop();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(ledger.notifications.list()[0]).toMatchObject({ state: "pending", attempts: 0 });
  });

  it("sends after a restart what was pending when the service stopped", async () => {
    jobDone();
    ledger.close();
    ledger = new Ledger(dir);
    receiver = await startWebhookReceiver();
    notifier = new ResultNotifier(ledger, settings(receiver.url), 10);
    notifier.start();
    expect(await settled()).toMatchObject({ state: "delivered", attempts: 1 });
    expect(receiver.received).toHaveLength(1);
  });
});
