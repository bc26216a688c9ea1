/**
 * The bench's figures from its rounds, and the short markdown report beside the JSON. Ratios set each mode's
 * non-model time against the raw WADO-RS GET + STOW-RS POST of the same bytes, measured in the same rounds:
 * - streamed (the service's way): total minus the model's own time, i.e. what fetching, assembling, encoding and
 *   storing add to the wall clock once the store overlaps inference;
 * - serial: fetch + volume and write + store, each as a stage of its own.
 * And the safeguards' cost: streamed (probe, measured output, held until the checks pass, then stored) against
 * unguarded (the same stream stored as it comes, no probe, nothing measured), total against total.
 */
import type { Provider } from "../config.js";
import type { SweepPoint } from "./cpu-sweep.js";
import type { PipelineRoundResult, RoundMode } from "./pipeline-round.js";
import { fmtMiB, fmtS, median, table } from "./report.js";
import type { ServiceProbeResult } from "./service-probe.js";

export interface BenchOptions {
  series: string;
  slices: number | undefined;
  model: string;
  provider: Provider;
  cpuThreads: number;
  rounds: number;
  mode: RoundMode | "both" | "guards" | "all";
  sweepSlices: number;
  skipSweep: boolean;
  skipService: boolean;
  /** STOW-RS instances per request and requests in flight (default: the service's, 16 and 2). */
  store: { instancesPerRequest: number; parallelRequests: number };
  out: string;
}

export interface BenchRound {
  round: number;
  order: string;
  mode: RoundMode;
  pipeline: PipelineRoundResult;
  wadoGetMs: number;
  wadoBytes: number;
  stowPostMs: number;
  stowBytes: number;
}

export interface ModeSummary {
  rounds: number;
  medianMs: Record<string, number | undefined>;
  /** Non-model wall time of the pipeline over raw GET + POST. */
  overheadRatio: number;
  peakRssMiB: number;
  peakRssOverFloatVolume: number;
  /** Streamed rounds: in how many the checks rejected the output, and the first round's verdicts. */
  rejected?: number;
  checks?: string[];
}

export interface BenchSummary {
  slices: number;
  matrix: string;
  floatVolumeMiB: number;
  provider: string;
  precision: string;
  raw: { wadoGetMs: number; stowPostMs: number; stowSinglePostMs: number | undefined };
  streamed: ModeSummary | undefined;
  unguarded: ModeSummary | undefined;
  /** Streamed total over unguarded total, minus one: what the probe and the checks add to the job. */
  safeguardsAdd: number | undefined;
  serial: (ModeSummary & { fetchVolumeRatio: number; writeStoreRatio: number }) | undefined;
  /** The model's own time per slice (worker, wall) and the CPU time of all threads per slice. */
  inferenceMsPerSlice: number;
  inferenceCpuMsPerSlice: number;
  /** 300 slices at the measured per-slice inference time plus the measured non-model time (streamed if run). */
  projected300SliceSeconds: number;
}

export interface BenchResult {
  startedAt: string;
  options: BenchOptions;
  environment: {
    host: string; cpus: number; cpuModel: string; memoryGiB: number; node: string; onnxruntimeNode: string;
    loadAverage1m5m15m: Record<string, number[]>;
  };
  summary: BenchSummary;
  rounds: BenchRound[];
  sweep: SweepPoint[];
  service: ServiceProbeResult | undefined;
}

export function summarise(rounds: BenchRound[], stowSinglePostMs?: number): BenchSummary {
  const first = rounds[0]!.pipeline;
  const floatVolumeBytes = first.slices * first.rows * first.columns * 4;
  const raw = { wadoGetMs: median(rounds.map((r) => r.wadoGetMs)), stowPostMs: median(rounds.map((r) => r.stowPostMs)), stowSinglePostMs };
  const rawSum = raw.wadoGetMs + raw.stowPostMs;
  const of = (mode: RoundMode) => rounds.filter((r) => r.mode === mode).map((r) => r.pipeline);
  const med = (list: PipelineRoundResult[], pick: (p: PipelineRoundResult) => number) => median(list.map(pick));
  const memory = (list: PipelineRoundResult[]) => {
    const peak = Math.max(...list.map((p) => p.peakRssBytes));
    return { peakRssMiB: Math.round(peak / 2 ** 20), peakRssOverFloatVolume: peak / floatVolumeBytes };
  };

  const streamedSummary = (list: PipelineRoundResult[]): ModeSummary | undefined => {
    if (list.length === 0) return undefined;
    const overhead = med(list, (p) => p.totalMs - p.workerInferenceMs);
    return {
      rounds: list.length,
      medianMs: {
        fetchVolume: med(list, (p) => p.fetchVolumeMs),
        inferenceWithStore: med(list, (p) => p.inferenceMs),
        workerInference: med(list, (p) => p.workerInferenceMs),
        storeTail: med(list, (p) => p.writeStoreMs),
        probe: med(list, (p) => p.probeMs ?? 0),
        total: med(list, (p) => p.totalMs),
        nonModel: overhead,
      },
      rejected: list.filter((p) => p.rejected).length,
      checks: list[0]?.checks ?? [],
      overheadRatio: overhead / rawSum,
      ...memory(list),
    };
  };
  const streamed = streamedSummary(of("streamed"));
  const unguarded = streamedSummary(of("unguarded"));
  const safeguardsAdd = streamed && unguarded ? streamed.medianMs.total! / unguarded.medianMs.total! - 1 : undefined;

  const serialRounds = of("serial");
  const serial = serialRounds.length === 0 ? undefined : (() => {
    const fetchVolume = med(serialRounds, (p) => p.fetchVolumeMs);
    const writeStore = med(serialRounds, (p) => p.writeStoreMs);
    return {
      rounds: serialRounds.length,
      medianMs: {
        wadoWait: med(serialRounds, (p) => p.wadoWaitMs),
        parse: med(serialRounds, (p) => p.fetchVolumeMs - p.wadoWaitMs),
        fetchVolume,
        inference: med(serialRounds, (p) => p.inferenceMs),
        encodeOnly: med(serialRounds, (p) => p.encodeOnlyMs ?? Number.NaN),
        writeStore,
        total: med(serialRounds, (p) => p.totalMs),
        nonModel: fetchVolume + writeStore,
      },
      overheadRatio: (fetchVolume + writeStore) / rawSum,
      fetchVolumeRatio: fetchVolume / raw.wadoGetMs,
      writeStoreRatio: writeStore / raw.stowPostMs,
      ...memory(serialRounds),
    };
  })();

  const all = rounds.map((r) => r.pipeline);
  const inferenceMsPerSlice = med(all, (p) => p.workerInferenceMs) / first.slices;
  const nonModel = streamed?.medianMs.nonModel ?? serial?.medianMs.nonModel ?? 0;
  return {
    slices: first.slices,
    matrix: `${first.rows}x${first.columns}`,
    floatVolumeMiB: Math.round(floatVolumeBytes / 2 ** 20),
    provider: first.provider,
    precision: first.precision,
    raw,
    streamed,
    unguarded,
    safeguardsAdd,
    serial,
    inferenceMsPerSlice,
    inferenceCpuMsPerSlice: med(all, (p) => p.inferenceCpuMs) / first.slices,
    projected300SliceSeconds: (nonModel + 300 * inferenceMsPerSlice) / 1000,
  };
}

const t = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? "-" : fmtS(v));
const x = (v: number | undefined) => (v === undefined ? "-" : v.toFixed(2));

export function markdown(r: BenchResult): string {
  const s = r.summary;
  const loads = Object.entries(r.environment.loadAverage1m5m15m).map(([k, v]) => `${k} ${v.join("/")}`).join("; ");
  const rawSum = s.raw.wadoGetMs + s.raw.stowPostMs;
  const out = [
    `# ct-enhance bench ${r.startedAt} on ${r.environment.host}`,
    "",
    `${s.slices} slices ${s.matrix} (float32 volume ${s.floatVolumeMiB} MiB), model ${r.options.model}, provider ${s.provider} (${s.precision}), ` +
      `${r.environment.cpus} CPUs (${r.environment.cpuModel}), node ${r.environment.node}, onnxruntime-node ${r.environment.onnxruntimeNode}. ` +
      `${r.rounds.length} rounds, modes in ABBA order (${r.rounds.slice(0, 6).map((q) => q.mode).join(", ")}), pipeline/baseline order alternating; medians. STOW-RS ${r.options.store.instancesPerRequest} instances a request, ` +
      `${r.options.store.parallelRequests} in flight (the service's setting).`,
    `Load average (1/5/15 min): ${loads}.`,
    "",
    `Raw baselines, same bytes, same rounds: WADO-RS GET ${t(s.raw.wadoGetMs)} s, STOW-RS POST ${t(s.raw.stowPostMs)} s ` +
      `(one POST of all: ${t(s.raw.stowSinglePostMs)} s); sum ${t(rawSum)} s.`,
  ];
  if (s.streamed) {
    const m = s.streamed.medianMs;
    out.push("", `Streamed (the service's way: the anatomy probe, then the model with its output measured for the checks and ` +
      `encoded beside it, stored once the checks pass), ${s.streamed.rounds} round(s); checks: ` +
      `${(s.streamed.checks ?? []).join("; ") || "none"}${(s.streamed.rejected ?? 0) > 0 ? ` (rejected in ${s.streamed.rejected} round(s): nothing stored)` : ""}:`, "",
      table(["", "s"], [
        ["fetch + volume", t(m.fetchVolume)],
        ["anatomy probe", t(m.probe)],
        ["model (worker's own time)", t(m.workerInference)],
        ["model start -> last output slice, measured and encoded beside it", t(m.inferenceWithStore)],
        ["checks + store after the last slice", t(m.storeTail)],
        ["total, fetch -> last instance stored (or rejected)", t(m.total)],
        [`**non-model time** (total - model) vs raw ${t(rawSum)} s`, `${t(m.nonModel)} (**${x(s.streamed.overheadRatio)}x**)`],
        ["peak RSS MiB (x float32 volume)", `${s.streamed.peakRssMiB} (**${x(s.streamed.peakRssOverFloatVolume)}x**)`],
      ]));
  }
  if (s.streamed && s.unguarded && s.safeguardsAdd !== undefined) {
    const g = s.streamed.medianMs;
    const u = s.unguarded.medianMs;
    out.push("", `**Safeguards, side by side in the same run**: the service's way (probe, output measured for the checks, ` +
      `held until they pass, then stored) ${t(g.total)} s against the same stream without them (no probe, nothing measured, ` +
      `each slice stored as it comes) ${t(u.total)} s: **${(100 * s.safeguardsAdd).toFixed(1)}%** added (target <= 5%), ` +
      `medians of ${s.streamed.rounds} and ${s.unguarded.rounds} rounds.`, "",
      table(["", "with safeguards s", "without s"], [
        ["fetch + volume", t(g.fetchVolume), t(u.fetchVolume)],
        ["anatomy probe", t(g.probe), "-"],
        ["model start -> last output slice", t(g.inferenceWithStore), t(u.inferenceWithStore)],
        ["after the last slice (checks + store / the store's tail)", t(g.storeTail), t(u.storeTail)],
        ["total", t(g.total), t(u.total)],
      ]));
  }
  if (s.serial) {
    const m = s.serial.medianMs;
    out.push("", `Serial (one stage after another, whole output volume kept), ${s.serial.rounds} round(s):`, "",
      table(["stage", "pipeline s", "raw baseline s", "ratio"], [
        ["WADO-RS wait (in volume)", t(m.wadoWait), "", ""],
        ["parse + HU (in volume)", t(m.parse), "", ""],
        ["fetch + volume", t(m.fetchVolume), `${t(s.raw.wadoGetMs)} (GET)`, x(s.serial.fetchVolumeRatio)],
        ["inference", t(m.inference), "", ""],
        ["encode alone (not in total)", t(m.encodeOnly), "", ""],
        ["write + STOW-RS store", t(m.writeStore), `${t(s.raw.stowPostMs)} (POST)`, x(s.serial.writeStoreRatio)],
        ["non-model time", t(m.nonModel), t(rawSum), x(s.serial.overheadRatio)],
        ["total", t(m.total), "", ""],
        ["peak RSS MiB (x float32 volume)", `${s.serial.peakRssMiB} (${x(s.serial.peakRssOverFloatVolume)}x)`, "", ""],
      ]));
  }
  out.push("", `Model: ${s.inferenceMsPerSlice.toFixed(0)} ms/slice wall, ${s.inferenceCpuMsPerSlice.toFixed(0)} ms/slice CPU (all threads); ` +
    `300 slices projected: ${s.projected300SliceSeconds.toFixed(0)} s (300 x the model's time per slice + the non-model time).`, "",
  table(["round", "mode", "order", "fetch+volume s", "infer s", "write+store s", "total s", "raw GET s", "raw POST s", "peak RSS MiB", "peak in"],
    r.rounds.map((q) => [q.round, q.mode, q.order, fmtS(q.pipeline.fetchVolumeMs), fmtS(q.pipeline.inferenceMs),
      `${q.mode === "serial" ? "" : "tail "}${fmtS(q.pipeline.writeStoreMs)}`, fmtS(q.pipeline.totalMs), fmtS(q.wadoGetMs), fmtS(q.stowPostMs),
      fmtMiB(q.pipeline.peakRssBytes), q.pipeline.peakRssStage])));
  if (r.sweep.length > 0) {
    out.push("", `CPU inference, ms per slice, wall / CPU time of all threads (${r.sweep[0]!.slices} slices):`, "",
      table(["threads \\ batch", ...[...new Set(r.sweep.map((p) => p.batchSize))].map(String)],
        [...new Set(r.sweep.map((p) => p.cpuThreads))].map((threads) => [threads,
          ...r.sweep.filter((p) => p.cpuThreads === threads).map((p) => `${p.msPerSlice.toFixed(0)} / ${p.cpuMsPerSlice.toFixed(0)}`)])));
  }
  if (r.service) out.push("", ...serviceSection(r.service));
  return `${out.join("\n")}\n`;
}

function serviceSection(service: ServiceProbeResult): string[] {
  const h = service.health;
  return [
    `Service (ct-enhance serve, provider ${service.config.provider}, every reference model on the series): wait for stable ` +
      `${fmtS(service.waitForStableMs)} s (Orthanc StableAge ${service.config.orthancStableAgeSeconds} s), upload to the last job done ` +
      `${fmtS(service.uploadToDoneMs)} s. Stable to stored (the first job: series seen stable and queued, to its last ` +
      `instance stored, or to its decision when it stored nothing): ${fmtS(service.stableToEnd.ms)} s (${service.stableToEnd.ending}), ` +
      `plus up to ${service.pollIntervalMs} ms of change-feed polling.`,
    "",
    table(["pipeline", "model", "provider", "ended", "slices", "job s", "300 slices projected s", "stages"], service.jobs.map((j) => [
      j.pipeline, j.model, j.provider ?? "-", j.ending, j.slices, fmtS(j.jobMs), j.slices > 0 ? ((j.jobMs / 1000) * (300 / j.slices)).toFixed(0) : "-",
      Object.entries(j.stageMs).map(([k, v]) => `${k} ${fmtS(v)}`).join(", ")])),
    "",
    table(["GET /health", "answers", "p50 ms", "p95 ms", "max ms", "> 100 ms"], [
      ["during inference", h.duringInfer.count, h.duringInfer.p50Ms, h.duringInfer.p95Ms, h.duringInfer.maxMs, h.duringInfer.over100Ms],
      ["whole run", h.all.count, h.all.p50Ms, h.all.p95Ms, h.all.maxMs, h.all.over100Ms],
    ]),
    "",
    `Slowest /health answers: ${h.slowest.map((q) => `${q.ms} ms (${q.stage} +${q.secondsIntoStage} s)`).join(", ")}.`,
    "",
    `The service's own worst event-loop delay (per-second windows, as its /health reports them): ` +
      `${h.serviceLoopDelayMaxMs.duringInfer} ms during inference, ${h.serviceLoopDelayMaxMs.all} ms over the whole run. ` +
      "An answer slower than that waited outside the event loop (scheduling on a busy machine, the client).",
  ];
}
