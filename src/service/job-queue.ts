/**
 * Runs jobs from the ledger one at a time (one accelerator), in the order `ledger.jobs.next()` gives by lane (urgent,
 * routine, off-peak in its window: src/jobs/lanes.ts); in a lane queued jobs first, then retries whose time has come.
 * Holds the last volume for the next job of the same series and fetches the next job's volume while the model runs
 * (held-volumes.ts). Woken when work arrives or the off-peak window opens; otherwise looks again every second.
 */
import { logger } from "../log.js";
import type { Job } from "../jobs/job-records.js";
import { runJob, type PipelineContext } from "../pipeline/runner.js";
import { HeldVolumes } from "./held-volumes.js";

const log = logger("job-queue");

export class JobQueue {
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private current: Job | undefined;
  /** A job's end could not be written (the ledger's disk refused): it is queued again once writes succeed. */
  private unrecorded = false;
  private readonly volumes: HeldVolumes;

  constructor(
    private readonly ctx: PipelineContext,
    private readonly idleMs = 1000,
    /** Called after each job run (e.g. to send its result notification now rather than at the next poll). */
    private readonly afterJob: () => void = () => undefined,
  ) {
    // The service's context, given the queue's volumes (set, not copied: the context is the service's one object).
    this.volumes = new HeldVolumes(() => this.ctx);
    ctx.volumes = this.volumes;
  }

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
    await this.volumes.close();
  }

  notify(): void {
    this.wake?.();
  }

  currentJob(): Job | undefined {
    return this.current;
  }

  /** The job whose end the ledger could not take is still 'running' there: queued again, as after a crash. */
  private requeueUnrecorded(): void {
    this.unrecorded = false;
    for (const job of this.ctx.ledger.jobs.recoverInterrupted()) {
      log.warn("job ended while the ledger could not be written; queued again", { job: job.id, stage: job.stage });
    }
  }

  private async work(): Promise<void> {
    while (this.running) {
      const health = this.ctx.ledger.health;
      // While the ledger cannot be written no job starts: its progress and end could not be recorded.
      const writable = health.writable();
      if (writable && this.unrecorded) this.requeueUnrecorded();
      const job = writable ? this.ctx.ledger.jobs.next() : undefined;
      if (!job) {
        this.volumes.release(); // nothing waits that could use them: no volume is held while the node is idle
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
        if (this.ctx.ledger.health.noteError(error)) this.unrecorded = true;
        else log.error("unexpected error around a job", { job: job.id, error: (error as Error).message });
      } finally {
        this.current = undefined;
        this.afterJob();
      }
    }
  }
}
