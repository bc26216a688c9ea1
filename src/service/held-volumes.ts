/**
 * The job queue's volumes between jobs (the seam: src/pipeline/stages/source-volumes.ts). It holds at most two: the
 * last one a job used, for the next job of the same series (two pipelines selecting one series fetch it once), and
 * one fetched ahead for the next job while the running job's model computes (the fetch hides behind inference).
 * Never more than one ahead, and only when the two volumes fit together under limits.maxVolumeMiB; a job that asks
 * for another series lets both go before it fetches. A prefetch that fails or is not made only means the next job
 * fetches its volume itself, as it always did.
 */
import type { CtVolume } from "../dicom/ct-volume.js";
import type { Job } from "../jobs/job-records.js";
import { logger } from "../log.js";
import { type PipelineContext, prefetchSourceVolume } from "../pipeline/runner.js";
import type { HeldVolume, SourceVolumes } from "../pipeline/stages/source-volumes.js";

const log = logger("held-volumes");

interface Held {
  key: string;
  volume: CtVolume;
  fetchedFor: number;
}

const mibOf = (volume: CtVolume): number => volume.hu.byteLength / 2 ** 20;

export class HeldVolumes implements SourceVolumes {
  private last: Held | undefined;
  private ahead: Held | undefined;
  private prefetching: Promise<void> | undefined;

  constructor(private readonly ctx: () => PipelineContext) {}

  take(key: string): HeldVolume | undefined {
    if (this.last?.key === key) return { volume: this.last.volume, how: "reused", fetchedFor: this.last.fetchedFor };
    const ahead = this.ahead?.key === key ? this.ahead : undefined;
    // What is not this job's goes before the job allocates its own.
    this.last = ahead;
    this.ahead = undefined;
    return ahead ? { volume: ahead.volume, how: "prefetched", fetchedFor: ahead.fetchedFor } : undefined;
  }

  keep(key: string, volume: CtVolume, job: Job): void {
    // Only voxels in shared memory stay the caller's after inference (others move to the worker).
    this.last = volume.hu.buffer instanceof SharedArrayBuffer ? { key, volume, fetchedFor: job.id } : undefined;
  }

  forget(volume: CtVolume): void {
    if (this.last?.volume === volume) this.last = undefined;
    if (this.ahead?.volume === volume) this.ahead = undefined;
  }

  inferring(job: Job, volume: CtVolume): void {
    if (this.prefetching || this.ahead) return;
    const ctx = this.ctx();
    let next: Job | undefined;
    try {
      next = ctx.ledger.jobs.next();
    } catch (error) {
      log.warn("next job not looked up for a prefetch", { error: (error as Error).message });
      return;
    }
    // The same series: the volume in hand serves it (unless the plan writes over it; then it is fetched anew).
    if (!next || next.sourceOrthancId === job.sourceOrthancId) return;
    const target = next;
    const started = performance.now();
    this.prefetching = (async () => {
      try {
        ctx.ledger.jobs.addEvent(target.id, "prefetch", `fetching the series ahead while job ${job.id} infers`);
        const fetched = await prefetchSourceVolume(ctx, target, mibOf(volume));
        if ("notFetched" in fetched) {
          ctx.ledger.jobs.addEvent(target.id, "prefetch", `not fetched ahead: ${fetched.notFetched}`);
          return;
        }
        this.ahead = { ...fetched, fetchedFor: job.id };
        ctx.ledger.jobs.addEvent(target.id, "prefetched", `${fetched.volume.slices} slices fetched ahead in ` +
          `${((performance.now() - started) / 1000).toFixed(1)} s while job ${job.id} ran`);
      } catch (error) {
        log.info("prefetch failed; the job fetches its series itself", { job: target.id, error: (error as Error).message });
        try {
          ctx.ledger.jobs.addEvent(target.id, "prefetch", `not fetched ahead (the job fetches it itself): ${(error as Error).message}`);
        } catch {
          // the ledger cannot be written: its health says so; the job fetches its series itself
        }
      } finally {
        this.prefetching = undefined;
      }
    })();
  }

  /** Lets every volume go (the queue found nothing to run). */
  release(): void {
    this.last = undefined;
    this.ahead = undefined;
  }

  /** Waits for a prefetch in flight (bounded by the fetch stage's deadline), then lets every volume go. */
  async close(): Promise<void> {
    await this.prefetching;
    this.release();
  }
}
