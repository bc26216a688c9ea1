/**
 * Stage timeouts: every stage that waits on something outside this process (fetch: Orthanc sending the series; infer:
 * the model in its worker thread; store: Orthanc taking the output) has a limit from the configuration
 * (`stageTimeouts`), scaled by the source's slice count. A stage past it fails the job as retryable, naming the stage
 * and the limit, so one series that hangs never holds the queue: the job goes to retry-wait and the next one runs.
 */
import type { Config, StageBudget } from "../config.js";
import { Stage, StageError } from "../stage-error.js";

export type TimedStage = typeof Stage.Fetch | typeof Stage.Infer | typeof Stage.Store;

/** One stage's limit for one series: milliseconds, and the sentence a timeout says it in. */
export interface StageDeadline {
  stage: TimedStage;
  ms: number;
  /** e.g. "the fetch stage's timeout of 70 s (60 s + 0.5 s x 20 slices, config stageTimeouts.fetch)" */
  text: string;
}

export function stageDeadline(config: Pick<Config, "stageTimeouts">, stage: TimedStage, slices: number): StageDeadline {
  const budget: StageBudget = config.stageTimeouts[stage];
  const seconds = budget.seconds + budget.perSliceSeconds * Math.max(0, slices);
  const shown = Math.round(seconds * 10) / 10;
  return {
    stage,
    ms: Math.round(seconds * 1000),
    text: `the ${stage} stage's timeout of ${shown} s (${budget.seconds} s + ${budget.perSliceSeconds} s x ${slices} slices, ` +
      `config stageTimeouts.${stage})`,
  };
}

/** The error of a stage that ran past its deadline: retryable (the other side may move again), naming the limit. */
export class StageTimeoutError extends StageError {
  constructor(deadline: StageDeadline, what: string) {
    super(deadline.stage, `${what} took longer than ${deadline.text}; retried later`, true);
  }
}

/**
 * Runs `work` with a signal that aborts at the deadline. The deadline wins even when `work` ignores its signal: the
 * answer is then a StageTimeoutError, and whatever `work` still does is left to end on its own.
 */
export async function withinDeadline<T>(deadline: StageDeadline, what: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new StageTimeoutError(deadline, what);
      controller.abort(error);
      reject(error);
    }, deadline.ms);
  });
  const working = work(controller.signal);
  try {
    return await Promise.race([working, expired]);
  } catch (error) {
    // A failure caused by the abort is the timeout.
    if (controller.signal.aborted) throw controller.signal.reason;
    throw error;
  } finally {
    clearTimeout(timer);
    working.catch(() => undefined); // lost the race: its own failure has no one to tell
  }
}
