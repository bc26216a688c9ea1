/**
 * What the follower and the workers of the distributed mode share in Redis (README "Scaling out"): the BullMQ queue's
 * name and connection, a queue entry's identity (the ledger job and its attempt, so adding one twice adds it once),
 * what an entry carries there and back, and the lock a worker holds on a source series while it works on it.
 */
import { Redis } from "ioredis";
import type { Config } from "../config.js";
import type { Job } from "../jobs/job-records.js";
import type { ShippedJobRecord } from "../jobs/shipped-jobs.js";

/** What the follower puts on the queue: the job's row as its ledger holds it, the attempt already counted. */
export interface DispatchedJob {
  job: Job;
}

/** What a worker answers for an entry: the attempt's record, and the before/after preview (PNG, base64) when one was made. */
export interface AttemptResult {
  record: ShippedJobRecord;
  previewPng?: string;
}

/** A running attempt's progress as the worker reports it (BullMQ job progress). */
export interface ReportedProgress {
  worker: string;
  stage: string | null;
  slicesDone: number;
  slicesTotal: number;
  provider: string | null;
}

/** The BullMQ job id of a ledger job's attempt: one entry per attempt, whoever adds it and however often. */
export const entryIdOf = (jobId: number, attempt: number): string => `ledger-${jobId}-attempt-${attempt}`;

/** The ledger job and attempt an entry id names, or undefined for an id this node did not make. */
export function parseEntryId(id: string | undefined): { jobId: number; attempt: number } | undefined {
  const match = /^ledger-(\d+)-attempt-(\d+)$/.exec(id ?? "");
  return match ? { jobId: Number(match[1]), attempt: Number(match[2]) } : undefined;
}

/** The distributed settings, once it is known that a Redis URL is set. */
export function queueSettings(config: Config): Config["queue"] & { redisUrl: string } {
  const { redisUrl } = config.queue;
  if (!redisUrl) throw new Error("the distributed mode needs queue.redisUrl (env CT_ENHANCE_REDIS_URL)");
  return { ...config.queue, redisUrl };
}

/**
 * A connection for BullMQ. A worker's commands wait for Redis to come back rather than fail (BullMQ's workers require
 * it), so a Redis restart pauses them instead of failing their jobs. The follower's (`failFast`) fail at once while
 * Redis is away: its pass ends, /health says so, and the next pass tries again.
 */
export function redisConnection(url: string, options: { failFast?: boolean } = {}): Redis {
  return new Redis(url, options.failFast
    ? { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectionName: "ct-enhance" }
    : { maxRetriesPerRequest: null, connectionName: "ct-enhance" });
}

const RENEW = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`;

/**
 * One worker at a time on a source series, whatever entries name it: a key holding the worker's token, with an expiry
 * the holder renews while it works, so a worker that dies frees the series after `ttlMs` and never before.
 */
export class SeriesLock {
  constructor(private readonly redis: Redis, private readonly prefix: string, private readonly ttlMs: number) {}

  private key(seriesUid: string): string {
    return `${this.prefix}:series-lock:${seriesUid}`;
  }

  /** Takes the series for `token`; false when another holds it. */
  async acquire(seriesUid: string, token: string): Promise<boolean> {
    return (await this.redis.set(this.key(seriesUid), token, "PX", this.ttlMs, "NX")) === "OK";
  }

  /** Extends the hold; false when it was lost (expired and maybe taken by another). */
  async renew(seriesUid: string, token: string): Promise<boolean> {
    return Number(await this.redis.eval(RENEW, 1, this.key(seriesUid), token, String(this.ttlMs))) === 1;
  }

  async release(seriesUid: string, token: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.key(seriesUid), token);
  }
}
