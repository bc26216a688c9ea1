/**
 * Sends the result notifications the ledger's outbox holds (queued with each job end, pipeline/job-notification.ts)
 * to the configured receiver, off the job's path: one at a time, oldest due first, each signed afresh per attempt.
 * An attempt that may succeed later (no answer, timeout, 408, 429, 5xx) is tried again with a doubling delay; one
 * the receiver refuses (other 4xx) or the last allowed attempt gives the notification up. Every outcome is kept in the
 * outbox and the job's timeline; a given-up notification is logged (receiver without credentials, never the secret)
 * and counted in /metrics. Never throws into the service: a defect here is logged and the loop goes on.
 */
import type { Config } from "../config.js";
import type { Ledger } from "../jobs/ledger.js";
import type { PendingNotification } from "../jobs/result-notifications.js";
import { logger } from "../log.js";
import { AttemptVerdict, describeAttempt, judgeAttempt, retryDelayMs } from "../notify/delivery-policy.js";
import { postNotification, receiverForLog } from "../notify/webhook-post.js";

const log = logger("result-notifier");

export type WebhookSettings = Config["webhook"] & { url: string; secret: string };

export class ResultNotifier {
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private stopping = new AbortController();

  constructor(
    private readonly ledger: Ledger,
    private readonly webhook: WebhookSettings,
    /** How often to look for due notifications when there is nothing to send, ms. */
    private readonly idleMs = 1000,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopping = new AbortController();
    const pending = this.ledger.notifications.pendingCount();
    log.info("result notification on", { receiver: receiverForLog(this.webhook.url), pending });
    this.loop = this.work();
  }

  /** Stops now: an attempt in hand is abandoned uncounted; pending notifications stay in the ledger for the next start. */
  async stop(): Promise<void> {
    this.running = false;
    this.stopping.abort();
    this.wake?.();
    await this.loop;
  }

  /** A notification was queued: look now instead of at the next poll. */
  notify(): void {
    this.wake?.();
  }

  private async work(): Promise<void> {
    while (this.running) {
      let due: PendingNotification[] = [];
      try {
        due = this.ledger.notifications.due();
        for (const notification of due) {
          if (!this.running) break;
          await this.deliver(notification);
        }
      } catch (error) {
        log.error("result notifier: unexpected error; going on", { error: (error as Error).message });
      }
      if (due.length === 0 && this.running) await this.idle();
    }
  }

  private idle(): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.idleMs);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** One attempt at one notification, and what the ledger keeps of it. */
  async deliver(notification: PendingNotification): Promise<void> {
    const { notifications, jobs } = this.ledger;
    const attempt = notification.attempts + 1;
    const result = await postNotification({
      url: this.webhook.url,
      secret: this.webhook.secret,
      timeoutMs: this.webhook.timeoutMs,
      event: notification.event,
      deliveryId: notification.deliveryId,
      attempt,
      body: notification.body,
    }, this.stopping.signal);
    if (this.stopping.signal.aborted) return; // stopping: the notification stays pending, this attempt uncounted
    const verdict = judgeAttempt(result);
    const what = describeAttempt(result);
    const fields = { job: notification.jobId, delivery: notification.deliveryId, receiver: receiverForLog(this.webhook.url), attempt };
    const timeline = (kind: string, message: string): void => {
      if (jobs.get(notification.jobId)) jobs.addEvent(notification.jobId, kind, message);
    };
    if (verdict === AttemptVerdict.Delivered) {
      notifications.delivered(notification.id, attempt, what);
      timeline("notified", `${notification.event} delivered (${notification.deliveryId}, ${what}, attempt ${attempt})`);
      log.info("result notification delivered", { ...fields, result: what });
      return;
    }
    const delay = verdict === AttemptVerdict.Retry ? retryDelayMs(this.webhook, attempt, result) : undefined;
    if (delay !== undefined) {
      const next = new Date(Date.now() + delay);
      notifications.retryAt(notification.id, attempt, what, next);
      log.warn("result notification not delivered; will retry", { ...fields, result: what, nextAttemptAt: next.toISOString() });
      return;
    }
    const why = verdict === AttemptVerdict.Refused ? `refused by the receiver (${what}), not retried` : `${what} on the last of ${attempt} attempts`;
    notifications.gaveUp(notification.id, attempt, what);
    timeline("notification-failed", `${notification.event} not delivered (${notification.deliveryId}): ${why}`);
    log.error("result notification given up", { ...fields, result: what, why });
  }
}
