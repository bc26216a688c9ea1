/**
 * Samples the process's resident set size every few ms and remembers, per stage, the peak and what V8 held at that
 * moment (JS heap, ArrayBuffers): says whether a peak is our buffers, garbage not yet collected, or native memory.
 */
export interface MemoryAtPeak {
  rssMiB: number;
  heapUsedMiB: number;
  arrayBuffersMiB: number;
}

const mib = (bytes: number) => Math.round(bytes / 2 ** 20);

export class MemorySampler {
  private current = "start";
  private peakValue = 0;
  private peakAt = "start";
  private readonly atStageEnd: Record<string, number> = {};
  private readonly peakByStage: Record<string, MemoryAtPeak> = {};
  private readonly timer: NodeJS.Timeout;

  constructor(intervalMs: number) {
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
    this.sample();
  }

  private sample(): number {
    const rss = process.memoryUsage.rss();
    if (rss > this.peakValue) {
      this.peakValue = rss;
      this.peakAt = this.current;
    }
    const known = this.peakByStage[this.current];
    if (!known || mib(rss) > known.rssMiB) {
      const usage = process.memoryUsage();
      this.peakByStage[this.current] = { rssMiB: mib(usage.rss), heapUsedMiB: mib(usage.heapUsed), arrayBuffersMiB: mib(usage.arrayBuffers) };
    }
    return rss;
  }

  /** From now on, samples belong to this stage. */
  begin(stage: string): void {
    this.sample();
    this.current = stage;
  }

  /** The current stage ended: remember the RSS at its end. */
  end(): void {
    this.atStageEnd[this.current] = this.sample();
  }

  stop(): { peak: number; peakStage: string; atStageEnd: Record<string, number>; peakByStage: Record<string, MemoryAtPeak> } {
    clearInterval(this.timer);
    this.sample();
    return { peak: this.peakValue, peakStage: this.peakAt, atStageEnd: { ...this.atStageEnd }, peakByStage: { ...this.peakByStage } };
  }
}
