/**
 * Runs jobs from the ledger one at a time (one accelerator, and one series' volume in memory at a time): queued
 * jobs first, then retries whose time has come. Woken when work arrives; otherwise looks again every second.
 */
import { logger } from "../log.js";
import type { Job } from "../jobs/job-records.js";
import { runJob, type PipelineContext } from "../pipeline/runner.js";

const log = logger("job-queue");

export class JobQueue {
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private current: Job | undefined;

  constructor(
    private readonly ctx: PipelineContext,
    private readonly idleMs = 1000,
    /** Called after each job run (e.g. to send its result notification now rather than at the next poll). */
    private readonly afterJob: () => void = () => undefined,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    for (const job of this.ctx.ledger.jobs.recoverInterrupted()) {
      log.warn("job was interrupted by a stop; queued again", { job: job.id, stage: job.stage });
    }
    this.loop = this.work();
  }

  /** Stops after the job in hand finishes. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  notify(): void {
    this.wake?.();
  }

  currentJob(): Job | undefined {
    return this.current;
  }

  private async work(): Promise<void> {
    while (this.running) {
      const job = this.ctx.ledger.jobs.next();
      if (!job) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.idleMs);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        continue;
      }
      this.current = job;
      try {
        await runJob(this.ctx, job);
      } catch (error) {
        log.error("unexpected error around a job", { job: job.id, error: (error as Error).message });
      } finally {
        this.current = undefined;
        this.afterJob();
      }
    }
  }
}
