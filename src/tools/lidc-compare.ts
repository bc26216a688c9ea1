/**
 * Compares a detection model's findings with the LIDC-IDRI radiologists' reads of the same series, using the
 * product's own code path: the series read from disk and assembled by src/dicom/volume.ts, the model run by the
 * InferenceService (worker thread, onnxruntime-node) from the ModelRegistry (sha256 checked), the probability map
 * turned into findings by src/pipeline/findings.ts with the manifest's threshold and findings settings, and a
 * two-stage detector's candidates scored by its candidate classifier (src/models/candidate-classifier.ts).
 *
 *   node dist/tools/lidc-compare.js --series <folder of .dcm> --xml <LIDC xml> [--model nodule-detector-small]
 *                                   [--models models] [--provider cpu] [--threads N] [--json out.json]
 *
 * Reference lesions: the four readers' nodule marks clustered within 10 mm (src/eval/lidc-xml.ts), each with the
 * number of readers who marked it. Matching rule: a finding hits a lesion when its centroid lies within
 * max(5 mm, the lesion's radius) of the lesion's centroid; each finding counts for its nearest such lesion; a
 * finding that hits none is a false positive (and is noted when it lies within 10 mm of a reader's non-nodule mark).
 * Not for diagnostic use: this measures a reference model on one series, nothing more.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { Provider } from "../config.js";
import { assembleVolume } from "../dicom/volume.js";
import type { Vector3 } from "../dicom/ct-volume.js";
import { nonNoduleMarks, parseLidcXml, readerNodules, referenceLesions, type ReferenceLesion } from "../eval/lidc-xml.js";
import { InferenceService } from "../models/inference.js";
import { ModelRegistry } from "../models/registry.js";
import { classifyCandidates } from "../models/candidate-classifier.js";
import { findingsFromProbability } from "../models/probability-findings.js";

export interface CompareOptions {
  series: string;
  xml: string;
  model: string;
  models: string;
  provider: Provider;
  threads: number;
  json?: string;
}

export interface MatchedFinding {
  trackingId: string;
  centroidPatientMm: Vector3;
  longestDiameterMm: number;
  volumeMm3: number;
  probability: number;
  /** The lesion it hits, or null for a false positive. */
  lesion: number | null;
  distanceMm: number;
  /** Distance to the nearest reader's non-nodule mark, mm (false positives only; null when there is none). */
  nearestNonNoduleMm: number | null;
}

export interface LesionResult {
  id: number;
  readers: number;
  diameterMm: number;
  outlined: boolean;
  centroidPatientMm: Vector3;
  hit: boolean;
  /** Distance from the lesion to the nearest finding, mm (null with no findings). */
  nearestFindingMm: number | null;
  toleranceMm: number;
}

export interface CompareReport {
  series: string;
  model: string;
  modelVersion: string;
  threshold: number;
  /** A two-stage detector's candidate classifier: its threshold, the candidates it scored and those it kept. */
  classifier?: { threshold: number; candidates: number; kept: number };
  provider: string;
  inferenceMs: number;
  rule: string;
  lesions: LesionResult[];
  findings: MatchedFinding[];
  byAgreement: { readers: number; lesions: number; hits: number; misses: number }[];
  falsePositives: number;
}

const distance = (a: Vector3, b: Vector3): number => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);

export const MATCH_RULE = "hit: finding centroid within max(5 mm, lesion radius) of the lesion centroid (readers' marks clustered within 10 mm)";

export function toleranceMm(lesion: Pick<ReferenceLesion, "diameterMm">): number {
  return Math.max(5, lesion.diameterMm / 2);
}

/** Matches findings to lesions (each finding to its nearest lesion within tolerance). Pure, for tests. */
export function matchFindings(
  findings: { centroidPatientMm: Vector3 }[],
  lesions: Pick<ReferenceLesion, "id" | "centroidPatientMm" | "diameterMm">[],
): { lesion: number | null; distanceMm: number }[] {
  return findings.map((finding) => {
    let lesion: number | null = null;
    let best = Infinity;
    for (const candidate of lesions) {
      const d = distance(finding.centroidPatientMm, candidate.centroidPatientMm);
      if (d <= toleranceMm(candidate) && d < best) {
        best = d;
        lesion = candidate.id;
      }
    }
    if (lesion === null) best = Math.min(...lesions.map((l) => distance(finding.centroidPatientMm, l.centroidPatientMm)));
    return { lesion, distanceMm: best };
  });
}

export async function compare(options: CompareOptions): Promise<CompareReport> {
  const files = readdirSync(options.series).filter((f) => f.toLowerCase().endsWith(".dcm")).sort();
  if (files.length === 0) throw new Error(`no .dcm files in ${options.series}: pass the folder holding the series' Part-10 files`);
  const volume = await assembleVolume(files.map((f) => new Uint8Array(readFileSync(path.join(options.series, f)))));
  const message = parseLidcXml(readFileSync(options.xml, "utf8"));
  if (message.seriesInstanceUid && message.seriesInstanceUid !== volume.seriesInstanceUID) {
    throw new Error(`${options.xml} reads series ${message.seriesInstanceUid}, but ${options.series} holds ${volume.seriesInstanceUID}: pass the XML of this series`);
  }
  const registry = await ModelRegistry.load(options.models);
  const model = registry.get(options.model);
  if (model.manifest.task !== "detection" || model.manifest.output.meaning !== "probability-map") {
    throw new Error(`model ${options.model} is not a detection model with a probability-map output`);
  }
  const { manifest } = model;
  const threshold = manifest.threshold ?? 0.5;
  const cap = manifest.outputChecks.find((c) => c.measure === "findings")?.max ?? 20;
  const classifier = manifest.candidateClassifier;
  const inference = new InferenceService(options.provider, options.threads);
  let result;
  let findings;
  let classified: CompareReport["classifier"];
  try {
    result = await inference.run(model, { hu: volume.hu.slice(), slices: volume.slices, rows: volume.rows, columns: volume.columns }, "over-input");
    const rules = { trackingNamespace: "2.25.1", trackingLabel: manifest.findings.label };
    findings = await findingsFromProbability(result.output, volume, {
      threshold,
      minVolumeMm3: manifest.findings.minVolumeMm3,
      // A two-stage detector's classifier sees every candidate; the cap applies to what it keeps.
      maxFindings: classifier ? Number.MAX_SAFE_INTEGER : cap,
      findingCode: manifest.findings.code,
      findingSiteCode: manifest.findings.site,
      ...rules,
    });
    if (classifier) {
      const second = await classifyCandidates(inference, model, volume, findings, rules);
      classified = { threshold: classifier.threshold, candidates: second.candidates, kept: second.kept.length };
      findings = second.kept.slice(0, cap);
    }
  } finally {
    await inference.close();
  }
  const lesions = referenceLesions(readerNodules(message, volume));
  const nonNodules = nonNoduleMarks(message, volume);
  const matches = matchFindings(findings, lesions);
  const matchedFindings: MatchedFinding[] = findings.map((f, i) => {
    const m = matches[i]!;
    const nearestNon = nonNodules.length ? Math.min(...nonNodules.map((n) => distance(n.positionPatientMm, f.centroidPatientMm))) : null;
    return {
      trackingId: f.trackingId,
      centroidPatientMm: f.centroidPatientMm,
      longestDiameterMm: f.longestDiameterMm,
      volumeMm3: f.volumeMm3,
      probability: f.probability,
      lesion: m.lesion,
      distanceMm: m.distanceMm,
      nearestNonNoduleMm: m.lesion === null ? nearestNon : null,
    };
  });
  const lesionResults: LesionResult[] = lesions.map((l) => ({
    id: l.id,
    readers: l.readers.length,
    diameterMm: l.diameterMm,
    outlined: l.outlined,
    centroidPatientMm: l.centroidPatientMm,
    hit: matches.some((m) => m.lesion === l.id),
    nearestFindingMm: findings.length ? Math.min(...findings.map((f) => distance(f.centroidPatientMm, l.centroidPatientMm))) : null,
    toleranceMm: toleranceMm(l),
  }));
  const byAgreement = [1, 2, 3, 4].map((readers) => {
    const at = lesionResults.filter((l) => l.readers === readers);
    const hits = at.filter((l) => l.hit).length;
    return { readers, lesions: at.length, hits, misses: at.length - hits };
  });
  return {
    series: volume.seriesInstanceUID,
    model: manifest.id,
    modelVersion: manifest.version,
    threshold,
    ...(classified ? { classifier: classified } : {}),
    provider: result.provider,
    inferenceMs: Math.round(result.inferenceMs),
    rule: MATCH_RULE,
    lesions: lesionResults,
    findings: matchedFindings,
    byAgreement,
    falsePositives: matchedFindings.filter((f) => f.lesion === null).length,
  };
}

const mm = (v: number | null): string => (v === null ? "-" : v.toFixed(1));
const point = (p: Vector3): string => `(${p.map((x) => x.toFixed(1)).join(", ")})`;

export function formatReport(report: CompareReport): string {
  const lines = [
    `model ${report.model} ${report.modelVersion}, threshold ${report.threshold}, ${report.provider}, inference ${(report.inferenceMs / 1000).toFixed(1)} s`,
    ...(report.classifier
      ? [`candidate classifier: ${report.classifier.candidates} candidates, ${report.classifier.kept} kept at ${report.classifier.threshold} or more (p = its probability)`]
      : []),
    report.rule,
    "",
    "reference lesions (LPS mm):",
    ...report.lesions.map((l) =>
      `  lesion ${l.id}: ${l.readers}/4 readers, ${l.outlined ? `${mm(l.diameterMm)} mm` : "< 3 mm (point marks)"} at ${point(l.centroidPatientMm)}: ` +
      `${l.hit ? "HIT" : "MISS"} (nearest finding ${mm(l.nearestFindingMm)} mm, tolerance ${mm(l.toleranceMm)} mm)`),
    "findings:",
    ...report.findings.map((f) =>
      `  ${f.trackingId}: p=${f.probability.toFixed(3)}, ${mm(f.longestDiameterMm)} mm, ${f.volumeMm3.toFixed(0)} mm3 at ${point(f.centroidPatientMm)}: ` +
      (f.lesion !== null
        ? `hits lesion ${f.lesion} (${mm(f.distanceMm)} mm)`
        : `FALSE POSITIVE (nearest lesion ${mm(Number.isFinite(f.distanceMm) ? f.distanceMm : null)} mm, nearest non-nodule mark ${mm(f.nearestNonNoduleMm)} mm)`)),
    "by reader agreement:",
    ...report.byAgreement.map((a) => `  ${a.readers}/4 readers: ${a.lesions} lesion(s), ${a.hits} hit, ${a.misses} missed`),
    `false positives: ${report.falsePositives}`,
  ];
  return lines.join("\n");
}

function parseArguments(argv: string[]): CompareOptions {
  const usage = "usage: node dist/tools/lidc-compare.js --series <folder of .dcm> --xml <LIDC xml> [--model nodule-detector-small] [--models DIR] [--provider cpu|auto|cuda|webgpu] [--threads N] [--json out.json]";
  const options: Partial<CompareOptions> = { model: "nodule-detector-small", models: "models", provider: "cpu", threads: 0 };
  for (let i = 0; i < argv.length; i += 2) {
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`${argv[i]} needs a value\n${usage}`);
    switch (argv[i]) {
      case "--series": options.series = value; break;
      case "--xml": options.xml = value; break;
      case "--model": options.model = value; break;
      case "--models": options.models = value; break;
      case "--json": options.json = value; break;
      case "--threads": options.threads = Number(value); break;
      case "--provider":
        if (!["auto", "cuda", "webgpu", "cpu"].includes(value)) throw new Error(`--provider must be auto, cuda, webgpu or cpu\n${usage}`);
        options.provider = value as Provider;
        break;
      default: throw new Error(`unknown argument ${argv[i]}\n${usage}`);
    }
  }
  if (!options.series || !options.xml) throw new Error(usage);
  return options as CompareOptions;
}

async function main(): Promise<void> {
  const options = parseArguments(process.argv.slice(2));
  const report = await compare(options);
  process.stdout.write(`${formatReport(report)}\n`);
  if (options.json) writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`lidc-compare: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
