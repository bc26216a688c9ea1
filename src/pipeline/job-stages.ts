/**
 * Where a running job is: the stage it is in (the ledger shows it, and a failure is recorded in it), and how long
 * each stage took (recorded as a stage duration when the next one starts or the job ends, with the execution
 * provider for infer).
 */
import type { Ledger } from "../jobs/ledger.js";
import { Stage } from "../stage-error.js";

export class JobStages {
  private stage: Stage = Stage.Select;
  private since = performance.now();
  private timed = false;
  private provider: string | null = null;

  constructor(private readonly ledger: Ledger, private readonly jobId: number) {}

  /** The stage the job is in now: the stage of any failure not already naming its own. */
  get current(): Stage {
    return this.stage;
  }

  enter(stage: Stage): void {
    this.end();
    this.stage = stage;
    this.since = performance.now();
    this.timed = true;
    this.ledger.jobs.setStage(this.jobId, stage);
  }

  setProvider(provider: string): void {
    if (provider === this.provider) return;
    this.provider = provider;
    this.ledger.jobs.setProvider(this.jobId, provider);
  }

  /** Records the duration of the stage in hand (once). */
  end(): void {
    if (!this.timed) return;
    this.timed = false;
    this.ledger.stageDurations.record(this.stage, this.stage === Stage.Infer ? this.provider : null, (performance.now() - this.since) / 1000);
  }
}

/**
 * The timeline event with the instance count a job fetched ("261 instances in Orthanc when fetched"): selection reads
 * it back when the series changes after the job, to say that it grew.
 */
export const SOURCE_EVENT = "source";
