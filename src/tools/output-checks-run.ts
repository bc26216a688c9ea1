/**
 * A model's output checks measured on one series the way the runner measures them (probe, intended use and its
 * slab, the output streamed into OutputMeasures), without Orthanc: to see what a model does to a series before a
 * site turns it on, and to set a check's limit on outputs whose truth is known (an ideal output given as a file).
 *
 *   node dist/tools/output-checks-run.js --series <folder of .dcm> [--model syncta-unet-small] [--models DIR]
 *        [--kernel A] [--input-f32 FILE] [--output-f32 FILE] [--checks JSON] [--threads N] [--json out.json]
 *
 * --kernel A: the series (and a given output) convolved in-plane with [A, 1-2A, A] first (0.25 smoothed, -0.25
 *   sharpened: a softer or sharper reconstruction kernel, src/eval/in-plane-kernel.ts).
 * --input-f32 / --output-f32: raw float32 HU of the whole series, slices ordered by ascending patient z (as
 *   training/syncta_pairs.load_axial orders them), replacing the input's voxels / standing for the model's output
 *   (the model is then not run): a de-enhanced contrast CT and the real one, a non-contrast CT and its registered
 *   arterial phase.
 * --checks: a JSON array of checks measured instead of the manifest's (the same schema).
 * Prints each check's verdict and the intended-use decision. Not for diagnostic use.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { z } from "zod";
import { type CtVolume, volumeSlab } from "../dicom/ct-volume.js";
import { assembleVolume } from "../dicom/volume.js";
import { inPlaneKernel } from "../eval/in-plane-kernel.js";
import { probedSlab, probeVolume } from "../measure/anatomy-probe.js";
import { type CheckVerdict, OutputMeasures } from "../measure/output-measures.js";
import { InferenceService } from "../models/inference.js";
import { OutputCheck } from "../models/manifest.js";
import { ModelRegistry } from "../models/registry.js";
import { judgeIntendedUse } from "../pipeline/intended-use.js";

export interface OutputChecksOptions {
  series: string;
  model: string;
  models: string;
  kernel?: number;
  inputF32?: string;
  outputF32?: string;
  checks?: OutputCheck[];
  threads: number;
}

export interface OutputChecksReport {
  series: string;
  model: string;
  modelVersion: string;
  output: "model" | "file";
  within: boolean;
  reasons: string[];
  slab?: { first: number; last: number };
  verdicts: CheckVerdict[];
}

/** A raw float32 volume in ascending patient z, put in the volume's slice order. */
function readZOrdered(file: string, volume: CtVolume): Float32Array {
  const bytes = readFileSync(file);
  const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const plane = volume.rows * volume.columns;
  if (values.length !== volume.slices * plane) {
    throw new Error(`${file} holds ${values.length} values; the series has ${volume.slices} x ${volume.rows} x ${volume.columns}`);
  }
  const byZ = volume.imagePositionPatient.map((p, k) => ({ z: p[2], k })).sort((a, b) => a.z - b.z);
  const out = new Float32Array(new SharedArrayBuffer(values.byteLength));
  byZ.forEach(({ k }, n) => out.set(values.subarray(n * plane, (n + 1) * plane), k * plane));
  return out;
}

export async function runOutputChecks(options: OutputChecksOptions): Promise<OutputChecksReport> {
  const files = readdirSync(options.series).filter((f) => f.endsWith(".dcm"));
  if (files.length === 0) throw new Error(`no .dcm files in ${options.series}: pass the folder holding the series' Part-10 files`);
  let volume = await assembleVolume(files.map((f) => new Uint8Array(readFileSync(path.join(options.series, f)))));
  if (options.inputF32) volume = { ...volume, hu: readZOrdered(options.inputF32, volume) };
  let given = options.outputF32 ? readZOrdered(options.outputF32, volume) : undefined;
  if (options.kernel !== undefined) {  // a given output was reconstructed with the same kernel as its input
    if (given) given = inPlaneKernel({ ...volume, hu: given }, options.kernel).hu;
    volume = inPlaneKernel(volume, options.kernel);
  }
  const model = (await ModelRegistry.load(options.models)).get(options.model);
  const probed = await probeVolume(volume);
  const use = judgeIntendedUse(model.manifest, volume, probed);
  const report = { series: volume.seriesInstanceUID, model: model.manifest.id, modelVersion: model.manifest.version,
    output: given ? "file" as const : "model" as const };
  if (!use.within) return { ...report, within: false, reasons: use.reasons, verdicts: [] };
  const [first, last] = use.slab ? [use.slab.first, use.slab.last] : [0, volume.slices - 1];
  const input = volumeSlab(volume, first, last);
  const measures = new OutputMeasures(input, use.slab ? probedSlab(probed, first, last) : probed, options.checks ?? model.manifest.outputChecks);
  const plane = volume.rows * volume.columns;
  if (given) {
    measures.addSlices(0, given.subarray(first * plane, (last + 1) * plane));
  } else {
    const inference = new InferenceService("cpu", options.threads);
    try {
      await inference.run(model, input, { streamTo: (at, values) => measures.addSlices(at, values) });
    } finally {
      await inference.close();
    }
  }
  return { ...report, within: true, reasons: [], ...(use.slab ? { slab: use.slab } : {}), verdicts: measures.verdicts() };
}

function parseArguments(argv: string[]): OutputChecksOptions & { json?: string } {
  const usage = "usage: node dist/tools/output-checks-run.js --series <folder of .dcm> [--model ID] [--models DIR] [--kernel A] " +
    "[--input-f32 FILE] [--output-f32 FILE] [--checks JSON] [--threads N] [--json out.json]";
  const options: Partial<OutputChecksOptions & { json: string }> = { model: "syncta-unet-small", models: "models", threads: 0 };
  for (let i = 0; i < argv.length; i += 2) {
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`${argv[i]} needs a value\n${usage}`);
    switch (argv[i]) {
      case "--series": options.series = value; break;
      case "--model": options.model = value; break;
      case "--models": options.models = value; break;
      case "--kernel": options.kernel = Number(value); break;
      case "--input-f32": options.inputF32 = value; break;
      case "--output-f32": options.outputF32 = value; break;
      case "--checks": options.checks = z.array(OutputCheck).parse(JSON.parse(value)); break;
      case "--threads": options.threads = Number(value); break;
      case "--json": options.json = value; break;
      default: throw new Error(`unknown argument ${argv[i]}\n${usage}`);
    }
  }
  if (!options.series) throw new Error(usage);
  return options as OutputChecksOptions & { json?: string };
}

async function main(): Promise<void> {
  const options = parseArguments(process.argv.slice(2));
  const report = await runOutputChecks(options);
  const lines = [`${report.model} ${report.modelVersion} (${report.output === "file" ? "output from a file" : "model run"}): ` +
    (report.within ? `within its intended use${report.slab ? `, slices ${report.slab.first + 1}-${report.slab.last + 1}` : ""}` : `outside its intended use: ${report.reasons.join("; ")}`),
    ...report.verdicts.map((v) => `  ${v.passed ? "passed" : "FAILED"}: ${v.text}`)];
  process.stdout.write(`${lines.join("\n")}\n`);
  if (options.json) writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`output-checks-run: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
