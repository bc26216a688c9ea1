/**
 * `ct-enhance probe <series> [--models]`: what the anatomy probe measures in a series (a DICOM folder, an Orthanc
 * series ID or a SeriesInstanceUID), as JSON: regions covered, lungs, blood pool and contrast, noise; with --models,
 * each model's intended-use verdict on it (within, with its slab, or outside, with the reasons). What the pipelines
 * judge on; handy when a series was skipped and a person wants to see why, or before adding a model.
 */
import { loadConfig } from "../config.js";
import { probeVolume } from "../measure/anatomy-probe.js";
import { ModelRegistry } from "../models/registry.js";
import { OrthancClient } from "../orthanc/rest.js";
import { judgeIntendedUse } from "../pipeline/intended-use.js";
import { loadSeries } from "./load-series.js";

export const PROBE_USAGE = "ct-enhance probe <DICOM folder | Orthanc series ID | SeriesInstanceUID> [--models] [--config FILE]";

export async function runProbeCommand(argv: string[]): Promise<number> {
  const positional = argv.filter((a, i) => !a.startsWith("--") && argv[i - 1] !== "--config");
  const configIndex = argv.indexOf("--config");
  const series = positional[0];
  if (!series || argv.includes("--help")) {
    process.stdout.write(`usage: ${PROBE_USAGE}\n`);
    return series ? 0 : 2;
  }
  const config = loadConfig(configIndex >= 0 ? argv[configIndex + 1] : undefined);
  const { volume } = await loadSeries(series, () => new OrthancClient(config.orthanc));
  const started = performance.now();
  const probed = await probeVolume(volume);
  const probeMs = Math.round(performance.now() - started);
  const models = argv.includes("--models")
    ? Object.fromEntries((await ModelRegistry.load(config.modelsDir)).list()
      .map(({ manifest }) => [manifest.id, judgeIntendedUse(manifest, volume, probed)]))
    : undefined;
  process.stdout.write(`${JSON.stringify({ series, probeMs, ...probed.probe, ...(models ? { models } : {}) }, null, 2)}\n`);
  return 0;
}
