/**
 * Long synchronous work on the main thread (parsing a series, encoding instances, reading a probability map) gives
 * the event loop a turn now and then, so the API and the change feed answer within ~20 ms meanwhile. Async
 * iteration alone does not: data already buffered is consumed without ever reaching the event loop.
 */

import { type IntervalHistogram, monitorEventLoopDelay } from "node:perf_hooks";

/** Lets timers and I/O run before going on. */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A function to call between units of work: it yields once `budgetMs` of work has passed since the last turn. */
export function turnTaker(budgetMs = 15): () => Promise<void> {
  let since = performance.now();
  return async () => {
    if (performance.now() - since < budgetMs) return;
    await nextTurn();
    since = performance.now();
  };
}

/**
 * The event loop's delay as this process measures it itself (Node's monitorEventLoopDelay, 10 ms resolution): the
 * worst delay of each past second, kept for a minute. /health and /metrics report it, so a slow answer can be told
 * apart from a blocked loop (a busy machine also delays the answer: scheduling, the network stack, the client).
 */
export class EventLoopDelay {
  private readonly histogram: IntervalHistogram;
  private readonly perSecondMaxMs: number[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly resolutionMs = 10, private readonly keepSeconds = 60) {
    this.histogram = monitorEventLoopDelay({ resolution: resolutionMs });
    this.histogram.enable();
    this.timer = setInterval(() => this.roll(), 1000).unref();
  }

  /** Closes a one-second window (the histogram counts the timer's whole interval, so the resolution comes off). */
  private roll(): void {
    const maxMs = this.histogram.count > 0 ? Math.max(0, this.histogram.max / 1e6 - this.resolutionMs) : 0;
    this.histogram.reset();
    this.perSecondMaxMs.push(maxMs);
    if (this.perSecondMaxMs.length > this.keepSeconds) this.perSecondMaxMs.shift();
  }

  /** Worst delay in the last whole second, ms. */
  lastSecondMaxMs(): number {
    return this.perSecondMaxMs.at(-1) ?? 0;
  }

  /** Worst delay in the last minute (whole seconds), ms. */
  lastMinuteMaxMs(): number {
    return this.perSecondMaxMs.reduce((a, b) => Math.max(a, b), 0);
  }

  stop(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }
}
