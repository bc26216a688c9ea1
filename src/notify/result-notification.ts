/**
 * What a RIS or worklist is told when a job ends: which event, which job, study, source series and model, what was
 * stored (series UIDs and SOP classes), what was found, and for a failed or rejected job why (with the measured
 * figures and limits of a rejection). UIDs only: no patient name, ID or birth date ever goes into it; a receiver
 * looks the study up in the PACS by its StudyInstanceUID.
 */

export const NotificationEvent = {
  Done: "job.done",
  Failed: "job.failed",
  Rejected: "job.rejected",
} as const;
export type NotificationEvent = (typeof NotificationEvent)[keyof typeof NotificationEvent];

/** The payload's layout version: a receiver refuses what it does not know; fields are only ever added within one. */
export const NOTIFICATION_SCHEMA = "ct-enhance.result-notification/1";

export interface StoredSeries {
  /** derived-ct: the model's image; sr: the findings report (TID 1500); seg: the findings' segmentation. */
  kind: "derived-ct" | "sr" | "seg";
  seriesInstanceUID: string;
  sopClassUID: string;
  /** Instances in the series, when known. */
  instances?: number;
}

export interface CodedTerm {
  code: string;
  scheme: string;
  meaning: string;
}

export interface FindingSummary {
  /** As in the SR and SEG: "Nodule 1" and its tracking UID. */
  trackingId: string;
  trackingUID: string;
  type: CodedTerm;
  site: CodedTerm;
  longestDiameterMm: number;
  volumeMm3: number;
  probability: number;
  /** The centroid in the patient coordinate system (LPS, mm), in the source's frame of reference. */
  centroidPatientMm: [number, number, number];
}

export interface CheckFigure {
  measure: string;
  value: number;
  min?: number;
  max?: number;
  passed: boolean;
  text: string;
}

export interface ResultNotification {
  schema: typeof NOTIFICATION_SCHEMA;
  event: NotificationEvent;
  /** The same as the X-CT-Enhance-Delivery header, on every attempt: one per job end. */
  deliveryId: string;
  /** When the job reached its end state (ISO 8601, UTC). */
  occurredAt: string;
  job: {
    id: number;
    state: "done" | "failed" | "rejected";
    pipeline: string;
    run: number;
    attempts: number;
    forced: boolean;
    createdAt: string;
  };
  model: { id: string; version: string };
  study: { studyInstanceUID: string };
  source: { seriesInstanceUID: string; orthancSeriesId: string };
  /** What was stored in the PACS (empty when nothing was). */
  outputs: StoredSeries[];
  /**
   * Detection models: what was found (a retry that finds the output stored already reads it back from the stored SR
   * and SEG); null for image models, or when that stored report could not be read back (the job's timeline says why).
   */
  findings: { count: number; scope?: string; items: FindingSummary[] } | null;
  /** Failed and rejected jobs: the stage, the cause, whether retrying may help; a rejection's checks with figures. */
  reason: { stage: string; message: string; retryable: boolean; checks?: CheckFigure[] } | null;
  software: { name: string; version: string };
}

/** The id a receiver drops duplicates by: job, end state and the notification's own number, e.g. "job-42-done-7". */
export function deliveryIdOf(jobId: number, state: string, notificationId: number): string {
  return `job-${jobId}-${state}-${notificationId}`;
}
