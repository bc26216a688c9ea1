/**
 * The shapes the API answers with, as zod schemas: they write the OpenAPI description's response schemas, and each
 * is checked against the TypeScript type it describes (`satisfies`), so the two cannot disagree.
 */
import { z } from "zod";
import type { Decision } from "../jobs/feed-records.js";
import { type Job, type JobEvent, JobState } from "../jobs/job-records.js";
import { LANES } from "../jobs/lanes.js";

export const ErrorAnswer = z.object({ error: z.string() });

export const JobSchema = z.object({
  id: z.number().int(),
  sourceOrthancId: z.string(),
  sourceSeriesUid: z.string(),
  studyUid: z.string(),
  pipeline: z.string(),
  modelId: z.string(),
  modelVersion: z.string(),
  run: z.number().int().describe("1 for the first run; a re-run increments it (new output UIDs)"),
  forced: z.boolean().describe("run past the rules, intended use and output checks, on request (the DICOM says so)"),
  lane: z.enum(LANES).describe("urgent, routine or off-peak: the order jobs start in (urgent first, routine 1 start in 4 when both wait, off-peak only in its window)"),
  state: z.enum(JobState),
  stage: z.string().nullable(),
  attempts: z.number().int(),
  nextRetryAt: z.string().nullable(),
  errorStage: z.string().nullable(),
  errorMessage: z.string().nullable(),
  errorRetryable: z.boolean().nullable(),
  provider: z.string().nullable(),
  slicesDone: z.number().int(),
  slicesTotal: z.number().int(),
  outputSeriesUid: z.string().nullable(),
  worker: z.string().nullable().describe("the worker that ran the last attempt (distributed mode); null in the embedded mode"),
  createdAt: z.string(),
  updatedAt: z.string(),
}) satisfies z.ZodType<Job>;

export const JobEventSchema = z.object({ at: z.string(), kind: z.string(), message: z.string() }) satisfies z.ZodType<JobEvent>;

export const JobWithTimeline = JobSchema.extend({
  preview: z.string().nullable().describe("the before/after PNG's path, once written"),
  events: z.array(JobEventSchema),
});

export const DecisionSchema = z.object({
  orthancSeriesId: z.string(),
  seriesUid: z.string().nullable(),
  pipeline: z.string().nullable(),
  decision: z.enum(["queued", "skipped", "rejected"]),
  reason: z.string(),
  decidedAt: z.string(),
}) satisfies z.ZodType<Decision>;

export const RerunResultSchema = z.object({
  series: z.string(),
  seriesUid: z.string(),
  jobs: z.array(z.object({
    pipeline: z.string(),
    outcome: z.enum(["queued", "requeued", "made-urgent", "unchanged", "skipped"]),
    reason: z.string(),
    job: JobSchema.nullable(),
  })),
});

export const ScheduleRunSchema = z.object({
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
  ok: z.boolean().nullable(),
  summary: z.unknown(),
});

export const ScheduleSchema = z.object({
  name: z.string(),
  description: z.string(),
  cron: z.string(),
  running: z.boolean(),
  nextRun: z.string().nullable(),
  lastRun: ScheduleRunSchema.nullable(),
  runs: z.number().int(),
});

/** A path parameter that is a job's number. */
export const JobIdParams = z.object({ id: z.coerce.number().int().positive().describe("the job's id") });
