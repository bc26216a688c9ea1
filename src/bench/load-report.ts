/** The load bench's result (src/bench/load-bench.ts) and its markdown. */
import { table } from "./report.js";

export interface LoadSample {
  /** Seconds since the first upload began. */
  atS: number;
  /** Jobs waiting: queued or waiting for a retry. */
  queued: number;
  running: number;
  ended: number;
  /** The service process's resident set, MiB. */
  rssMiB: number;
}

export interface Percentiles {
  count: number;
  p50: number;
  p95: number;
  max: number;
}

export interface LoadResult {
  startedAt: string;
  host: string;
  cpus: number;
  options: { copies: number; windowSeconds: number; series: string; slices: number; provider: string; cpuThreads: number };
  /** First upload began -> last upload finished. */
  uploadsSeconds: number;
  jobs: { total: number; done: number; notDone: { id: number; state: string; error: string | null }[]; duplicated: number };
  exactlyOnce: { ok: boolean; problems: string[]; outputSeries: number; orthancSeries: number };
  /** Done jobs per minute, from the first upload finished to the last job done. */
  throughputSeriesPerMin: number;
  /** A copy's upload finished -> its job done. */
  latencySeconds: Percentiles;
  queueDepthMax: number;
  rssMiBMax: number;
  samples: LoadSample[];
}

export function percentiles(values: number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]! : Number.NaN);
  const round = (v: number) => Math.round(v * 10) / 10;
  return { count: sorted.length, p50: round(at(0.5)), p95: round(at(0.95)), max: round(sorted.at(-1) ?? Number.NaN) };
}

/** Every tenth sample (and the last), for the markdown's over-time table. */
function thinned(samples: LoadSample[]): LoadSample[] {
  const step = Math.max(1, Math.ceil(samples.length / 24));
  return samples.filter((_, i) => i % step === 0 || i === samples.length - 1);
}

export function loadMarkdown(r: LoadResult): string {
  const o = r.options;
  return [
    `# Load: ${o.copies} series within ${o.windowSeconds} s (${r.startedAt}, ${r.host}, ${r.cpus} CPUs)`,
    "",
    `${o.copies} copies of ${o.slices} slices of ${o.series}, each with new Study/Series/SOP Instance UIDs, uploaded to a local ` +
      `Orthanc over ${r.uploadsSeconds.toFixed(1)} s while \`ct-enhance serve\` (provider ${o.provider}, ${o.cpuThreads || "default"} CPU threads, ` +
      "the operator tests' Syn-CTA fixture pipeline) followed it. `npm run bench:load`.",
    "",
    table(["what", "measured"], [
      ["jobs", `${r.jobs.total}: ${r.jobs.done} done, ${r.jobs.notDone.length} not done, ${r.jobs.duplicated} sources with more than one job`],
      ["exactly once", r.exactlyOnce.ok
        ? `yes: ${r.exactlyOnce.outputSeries} derived series, one per source, each as many instances as its source; Orthanc holds ${r.exactlyOnce.orthancSeries} series`
        : `**no**: ${r.exactlyOnce.problems.slice(0, 5).join("; ")}`],
      ["throughput", `${r.throughputSeriesPerMin.toFixed(2)} series/min (first upload finished to last job done)`],
      ["latency, upload finished -> done", `p50 ${r.latencySeconds.p50} s, p95 ${r.latencySeconds.p95} s, max ${r.latencySeconds.max} s (${r.latencySeconds.count} jobs)`],
      ["queue depth (queued + retry-wait), max", String(r.queueDepthMax)],
      ["service RSS, max", `${r.rssMiBMax} MiB`],
    ]),
    "",
    "Over time (every 500 ms sampled; a subset shown):",
    "",
    table(["s", "queued", "running", "ended", "RSS MiB"], thinned(r.samples).map((s) => [s.atS.toFixed(1), s.queued, s.running, s.ended, s.rssMiB])),
    ...(r.jobs.notDone.length ? ["", "Not done:", "", ...r.jobs.notDone.map((j) => `- job ${j.id} ${j.state}: ${j.error ?? ""}`)] : []),
  ].join("\n");
}
