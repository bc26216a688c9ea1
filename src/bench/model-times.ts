/**
 * `npm run bench:models`: the per-slice inference time of every reference model through the service's own
 * inference worker (provider, fp16 variant, batch size as the service picks them), and the same networks in
 * PyTorch on the same device (training/torch_time.py), side by side in one run. Issue 5 asks for onnxruntime within
 * 1.3x of PyTorch fp16 on the GPU; on a CPU the yardstick is PyTorch fp32. No Orthanc and no CT data needed: the
 * input is a synthetic HU volume (a conv net's run time does not depend on pixel values), so it runs as is on the
 * GPU machine. Writes bench-results/<date>-models-<host>.json and .md.
 *
 * Rounds alternate an onnxruntime pass and a PyTorch pass, so the ratio compares the two under the same load.
 *
 *   node dist/bench/model-times.js [--provider auto|cpu|cuda|webgpu] [--models a,b] [--slices N] [--repeats N]
 *     [--cpu-threads N] [--python PYTHON | --no-torch] [--out FOLDER]
 */
import { execFileSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { PACKAGE_ROOT, Provider } from "../config.js";
import { setLogLevel } from "../log.js";
import { InferenceService, type InferenceSummary } from "../models/inference.js";
import { ModelRegistry } from "../models/registry.js";
import { flags } from "./command-line.js";
import { median, table, writeResults } from "./report.js";

interface Options {
  provider: Provider;
  models: string[] | undefined;
  slices: number;
  repeats: number;
  cpuThreads: number;
  python: string | undefined;
  out: string;
}

const USAGE = "usage: node dist/bench/model-times.js [--provider auto|cpu|cuda|webgpu] [--models a,b] [--slices N] " +
  "[--repeats N] [--cpu-threads N] [--python PYTHON | --no-torch] [--out FOLDER]";

function parseOptions(argv: string[]): Options {
  const options: Options = {
    provider: "auto",
    models: undefined,
    slices: 64,
    repeats: 3,
    cpuThreads: 0,
    python: "python3",
    out: path.join(PACKAGE_ROOT, "bench-results"),
  };
  for (const { name: flag, value, count } of flags(argv, USAGE)) {
    switch (flag) {
      case "--provider": options.provider = Provider.parse(value()); break;
      case "--models": options.models = value().split(","); break;
      case "--slices": options.slices = count(8); break;
      case "--repeats": options.repeats = count(1); break;
      case "--cpu-threads": options.cpuThreads = count(0); break;
      case "--python": options.python = value(); break;
      case "--no-torch": options.python = undefined; break;
      case "--out": options.out = path.resolve(value()); break;
      case "--help": case "-h": process.stdout.write(`${USAGE}\n`); process.exit(0); break;
      default: throw new Error(`unknown option ${flag}; ${USAGE}`);
    }
  }
  return options;
}

const say = (message: string) => process.stderr.write(`[bench:models ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

/** Slices of 512 x 512 pseudo-random HU in [-1000, 1000]. */
function syntheticVolume(slices: number): { hu: Float32Array; slices: number; rows: number; columns: number } {
  const hu = new Float32Array(slices * 512 * 512);
  let seed = 12345;
  for (let i = 0; i < hu.length; i += 1) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    hu[i] = (seed / 2 ** 32) * 2000 - 1000;
  }
  return { hu, slices, rows: 512, columns: 512 };
}

interface TorchModelTimes {
  parameters: number;
  fp32?: { msPerSlice: number };
  fp16?: { msPerSlice: number };
}

interface TorchRun {
  torch: string;
  device: string;
  gpu: string | null;
  threads: number;
  models: Record<string, TorchModelTimes>;
}

/** One PyTorch pass over the same slices (its own process, its own untimed warm-up pass first). */
function pytorchPass(python: string, id: string, device: string, batch: number, options: Options): TorchRun {
  const args = [path.join(PACKAGE_ROOT, "training", "torch_time.py"), "--models", id, "--device", device,
    "--slices", String(options.slices), "--batch", String(batch), "--repeats", "1"];
  if (device === "cpu") args.push("--threads", String(options.cpuThreads || os.availableParallelism()));
  let stdout: string;
  try {
    stdout = execFileSync(python, args, { stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 20 }).toString();
  } catch (error) {
    throw new Error(`${python} training/torch_time.py failed (${(error as Error).message.split("\n")[0]}): give a Python ` +
      "with torch (--python /usr/bin/python3 on the development machine) or --no-torch");
  }
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as TorchRun;
}

interface ModelRound {
  onnxruntimeMsPerSlice: number;
  pytorchFp32MsPerSlice?: number;
  pytorchFp16MsPerSlice?: number;
  /** onnxruntime / PyTorch fp16 on a GPU, / PyTorch fp32 on a CPU. */
  ratio?: number;
}

interface ModelTimes extends Omit<InferenceSummary, "inferenceMs" | "fallbacks"> {
  model: string;
  rounds: ModelRound[];
  pytorch?: Omit<TorchRun, "models">;
}

/**
 * Rounds of one onnxruntime pass (the service's worker, warmed, an untimed pass first) then one PyTorch pass, so
 * that both see the same load; the ratio is taken per round.
 */
async function timeModel(registry: ModelRegistry, id: string, options: Options): Promise<ModelTimes> {
  const model = registry.get(id);
  const volume = syntheticVolume(options.slices);
  const inference = new InferenceService(options.provider, options.cpuThreads);
  const rounds: ModelRound[] = [];
  let summary: InferenceSummary | undefined;
  let pytorch: Omit<TorchRun, "models"> | undefined;
  try {
    await inference.warmup(model);
    await inference.run(model, { ...volume, hu: volume.hu.slice() }, "over-input"); // untimed: kernel choice, allocations
    for (let r = 0; r < options.repeats; r += 1) {
      summary = await inference.run(model, { ...volume, hu: volume.hu.slice() }, "over-input");
      const round: ModelRound = { onnxruntimeMsPerSlice: summary.inferenceMs / volume.slices };
      if (options.python) {
        const device = summary.provider === "cpu" ? "cpu" : "cuda";
        const { models, ...about } = pytorchPass(options.python, id, device, summary.batchSize, options);
        pytorch = about;
        round.pytorchFp32MsPerSlice = models[id]?.fp32?.msPerSlice;
        round.pytorchFp16MsPerSlice = models[id]?.fp16?.msPerSlice;
        const reference = device === "cpu" ? round.pytorchFp32MsPerSlice : round.pytorchFp16MsPerSlice;
        if (reference) round.ratio = round.onnxruntimeMsPerSlice / reference;
      }
      rounds.push(round);
      say(`${id} round ${r + 1}: onnxruntime ${summary.provider} ${summary.precision} batch ${summary.batchSize} ` +
        `${round.onnxruntimeMsPerSlice.toFixed(2)} ms/slice` + (round.ratio ? `, ratio to PyTorch ${round.ratio.toFixed(2)}` : ""));
    }
  } finally {
    await inference.close();
  }
  const { provider, precision, batchSize } = summary!;
  return { model: id, provider, precision, batchSize, rounds, ...(pytorch ? { pytorch } : {}) };
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  setLogLevel("warn");
  const registry = await ModelRegistry.load(path.join(PACKAGE_ROOT, "models"));
  const ids = options.models ?? registry.list().map((m) => m.manifest.id);
  const startedAt = new Date();
  const results: ModelTimes[] = [];
  for (const id of ids) results.push(await timeModel(registry, id, options));

  const fmt = (values: (number | undefined)[]) => {
    const known = values.filter((v): v is number => v !== undefined);
    if (known.length === 0) return "-";
    const [low, high] = [Math.min(...known), Math.max(...known)];
    return `${median(known).toFixed(2)} (${low.toFixed(2)}-${high.toFixed(2)})`;
  };
  const about = results.find((r) => r.pytorch)?.pytorch;
  const markdown = [
    `# Per-slice inference: onnxruntime-node (the service's worker) vs PyTorch, ${startedAt.toISOString()}`,
    "",
    `${os.hostname()}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? "?"}), ${options.slices} synthetic 512x512 slices; ` +
      `${options.repeats} rounds of one onnxruntime pass then one PyTorch pass (each after an untimed one); ` +
      `PyTorch ${about ? `${about.torch} on ${about.gpu ?? `CPU, ${about.threads} threads`}` : "not run"}. ` +
      "Median (range) over the rounds, ms per slice. Ratio per round: onnxruntime / PyTorch fp16 on a GPU, " +
      "/ PyTorch fp32 on a CPU (issue 5 target on the GPU: <= 1.3).",
    "",
    table(
      ["model", "onnxruntime provider / precision / batch", "onnxruntime", "PyTorch fp32", "PyTorch fp16", "ratio"],
      results.map((r) => [r.model, `${r.provider} / ${r.precision} / ${r.batchSize}`,
        fmt(r.rounds.map((x) => x.onnxruntimeMsPerSlice)), fmt(r.rounds.map((x) => x.pytorchFp32MsPerSlice)),
        fmt(r.rounds.map((x) => x.pytorchFp16MsPerSlice)), fmt(r.rounds.map((x) => x.ratio))]),
    ),
    "",
  ].join("\n");
  const stem = `${startedAt.toISOString().slice(0, 16).replace(/[:T]/g, "-")}-models-${os.hostname()}`;
  const written = writeResults(options.out, stem, { startedAt: startedAt.toISOString(), options, results }, markdown);
  process.stdout.write(`${markdown}\nwritten: ${written.json}, ${written.markdown}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:models failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exit(1);
});
