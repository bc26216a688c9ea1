/**
 * A job's end and the result notification that tells of it, committed together: the ledger's end transition and the
 * notification's outbox row are one transaction, so every end a receiver should hear of (done, failed for good,
 * rejected) is queued exactly once, and nothing is queued for a transition that did not happen (another caller won
 * it). A retry-wait is not an end; skipped and cancelled jobs are not notified. The notifier sends it later, off the
 * job's path (service/result-notifier.ts): a slow or absent receiver never holds a job up.
 */
import type { Job } from "../jobs/job-records.js";
import type { Ledger } from "../jobs/ledger.js";
import type { CheckVerdict } from "../measure/output-measures.js";
import {
  NOTIFICATION_SCHEMA, NotificationEvent, type ResultNotification, type StoredSeries,
} from "../notify/result-notification.js";
import { SOFTWARE_NAME, SOFTWARE_VERSION } from "../version.js";

/** What the job produced, as far as the notification tells it. */
export interface JobResult {
  outputs: StoredSeries[];
  findings: ResultNotification["findings"];
  /** The output checks as measured: a rejection's notification lists them all, passed and failed, with their limits. */
  checks?: readonly CheckVerdict[];
}

export const NO_RESULT: JobResult = { outputs: [], findings: null };

const EVENT_OF: Partial<Record<Job["state"], NotificationEvent>> = {
  done: NotificationEvent.Done,
  failed: NotificationEvent.Failed,
  rejected: NotificationEvent.Rejected,
};

/**
 * Runs `transition` (a ledger call that ends job `jobId`) and, when notifying and the job did reach an end a receiver
 * hears of, queues its notification in the same transaction. Answers what `transition` answered.
 */
export function endJob(ledger: Ledger, notifying: boolean, jobId: number, transition: () => boolean, result: JobResult): boolean {
  return ledger.transaction(() => {
    const ended = transition();
    if (!ended || !notifying) return ended;
    const job = ledger.jobs.get(jobId)!;
    const event = EVENT_OF[job.state];
    if (event) {
      ledger.notifications.enqueue(job.id, event, job.state, (deliveryId) => JSON.stringify(resultNotification(job, event, deliveryId, result)));
    }
    return true;
  });
}

/** The payload for `job` as it stands after its end transition. UIDs only, never patient data. */
export function resultNotification(job: Job, event: NotificationEvent, deliveryId: string, result: JobResult): ResultNotification {
  return {
    schema: NOTIFICATION_SCHEMA,
    event,
    deliveryId,
    occurredAt: job.updatedAt,
    job: {
      id: job.id,
      state: job.state as ResultNotification["job"]["state"],
      pipeline: job.pipeline,
      run: job.run,
      attempts: job.attempts,
      forced: job.forced,
      createdAt: job.createdAt,
    },
    model: { id: job.modelId, version: job.modelVersion },
    study: { studyInstanceUID: job.studyUid },
    source: { seriesInstanceUID: job.sourceSeriesUid, orthancSeriesId: job.sourceOrthancId },
    outputs: event === NotificationEvent.Done ? result.outputs : [],
    findings: event === NotificationEvent.Done ? result.findings : null,
    reason: event === NotificationEvent.Done ? null : {
      stage: job.errorStage ?? "unknown",
      message: job.errorMessage ?? "",
      retryable: job.errorRetryable ?? false,
      ...(event === NotificationEvent.Rejected ? { checks: (result.checks ?? []).map(({ measure, value, min, max, passed, text }) =>
        ({ measure, value, ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}), passed, text })) } : {}),
    },
    software: { name: SOFTWARE_NAME, version: SOFTWARE_VERSION },
  };
}
