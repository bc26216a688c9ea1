/**
 * Model output on its way from the inference worker to the store stage: slices arrive batch by batch while the
 * model still runs, and the store encodes and sends them as they come, so the transfer hides behind inference and
 * the output is never held as a whole volume.
 */

/** Output slices [first, first + values.length / (rows x columns)), HU (or probability), slice-major. */
export interface OutputSlices {
  first: number;
  values: Float32Array;
}

/** The whole output volume as one batch, for callers that hold it already. */
export async function* wholeOutput(values: Float32Array): AsyncGenerator<OutputSlices> {
  yield { first: 0, values };
}

/**
 * A queue with one writer (the inference listener) and one reader (for await). The writer ends it, or fails it
 * with the inference error, which the reader then gets instead of the slices still queued. A reader that stops
 * early (its store failed) makes further writes a no-op, so nothing piles up for nobody.
 */
export class OutputSliceQueue implements AsyncIterable<OutputSlices> {
  private readonly queued: OutputSlices[] = [];
  private ended = false;
  private failure: { error: unknown } | undefined;
  private abandoned = false;
  private wake: (() => void) | undefined;

  push(slices: OutputSlices): void {
    if (this.abandoned || this.ended) return;
    this.queued.push(slices);
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  fail(error: unknown): void {
    this.failure ??= { error };
    this.end();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<OutputSlices> {
    try {
      for (;;) {
        if (this.failure) throw this.failure.error;
        const next = this.queued.shift();
        if (next) yield next;
        else if (this.ended) return;
        else await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      this.abandoned = true;
      this.queued.length = 0;
    }
  }
}
