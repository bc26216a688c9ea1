/**
 * The output plan of detection models: the probability map (written over the input volume: one volume in memory)
 * becomes findings, kept only inside the lungs the probe found (dilated by the manifest's margin), and stored as a
 * DICOM SEG (one segment per finding) and a TID 1500 SR that references it, in the source study. Every report states
 * the detector's scope (lesion sizes, lungs only, threshold), so "no nodule found" never reads as "no lesion". The
 * findings check (more than the manifest allows means the detector misfired) can reject the output: nothing is stored.
 * A series with no finding still gets a report that says so. The SR is stored last: its presence means the output is
 * whole.
 */
import type { CtVolume } from "../../dicom/ct-volume.js";
import type { AlgorithmIdentity, Finding } from "../../dicom/finding.js";
import { encodeFindingsInstances } from "../../dicom/findings-instances.js";
import { type ReportedFinding, ReportReadError, reportedFindings } from "../../dicom/reported-findings.js";
import { SopClass } from "../../dicom/part10.js";
import { deterministicUid } from "../../dicom/uid.js";
import type { ProbedVolume } from "../../measure/anatomy-probe.js";
import { OutputMeasures } from "../../measure/output-measures.js";
import type { ModelManifest } from "../../models/manifest.js";
import { classifyCandidates, huForPatches } from "../../models/candidate-classifier.js";
import { maskCentroid } from "../../models/candidate-patches.js";
import { findingsFromProbability } from "../../models/probability-findings.js";
import { DicomwebError, type DicomwebEndpoint } from "../../dicomweb/endpoint.js";
import { retrieveSeries } from "../../dicomweb/wado-rs.js";
import type { FindingSummary, StoredSeries } from "../../notify/result-notification.js";
import { asStageError, Stage } from "../../stage-error.js";
import { SOFTWARE_NAME, SOFTWARE_VERSION } from "../../version.js";
import { storeOutputInstances } from "../stages/store-instances.js";
import {
  failedChecks, inferenceFailure, type OutputPlan, outputSeriesNumber, outputSeriesUid, overrideStatement, type PlanTarget,
} from "./output-plan.js";

/** What the detector looks for, as every report states it. */
export function detectorScope(manifest: ModelManifest): string {
  const { diameterMm, label } = manifest.findings;
  const classifier = manifest.candidateClassifier;
  const confidence = classifier
    ? `candidates above ${manifest.threshold ?? 0.5} on the probability map, kept at a candidate classifier probability of ${classifier.threshold} or more`
    : `probability above ${manifest.threshold ?? 0.5}`;
  return `scope: ${label.toLowerCase()}s of ${diameterMm.min}-${diameterMm.max} mm longest diameter inside the lungs, ` +
    `${confidence}; larger lesions (masses) and anything outside the lungs are not looked for`;
}

/** A two-stage detector's SR says whose probability each finding's confidence (Certainty of Finding) is. */
export function confidenceStatement(manifest: ModelManifest): string[] {
  const classifier = manifest.candidateClassifier;
  if (!classifier) return [];
  return [
    `confidence: each finding's certainty is the candidate classifier's probability that it is a ${manifest.findings.label.toLowerCase()} ` +
    `(${classifier.file}, sha256 ${classifier.sha256}, ${classifier.patchVoxels}^3 patch at ${classifier.spacingMm} mm), ` +
    `not the probability map's`,
  ];
}

/**
 * Findings measured longer than the detector's range are not the lesions it looks for: each is reported as the
 * manifest's `oversizeCode` (a mass, by default) and tracked as such ("Mass 2"), and the report says that it lies
 * outside the scope, so that a 34 mm finding never reads as a measured nodule. Returns the statement for the SR's
 * Algorithm Parameters and the timeline, or none when every finding is inside the range.
 */
export function oversizeFindings(findings: Finding[], manifest: ModelManifest): { findings: Finding[]; count: number; statement?: string } {
  const { diameterMm, oversizeCode, label } = manifest.findings;
  const isOver = (f: Finding) => f.longestDiameterMm > diameterMm.max;
  const count = findings.filter(isOver).length;
  if (count === 0) return { findings, count };
  const relabelled = findings.map((f) => (isOver(f) ? { ...f, findingCode: oversizeCode, trackingId: f.trackingId.replace(label, oversizeCode.meaning) } : f));
  const which = relabelled.filter(isOver).map((f) => `${f.trackingId} (${f.longestDiameterMm.toFixed(0)} mm)`).join(", ");
  return {
    findings: relabelled,
    count,
    statement: `outside the scope: ${which} measured longer than ${diameterMm.max} mm, reported as ` +
      `${oversizeCode.meaning.toLowerCase()} for a reader to look at; this detector was neither made nor validated for ` +
      `lesions of that size, so its outline, size and certainty are not measurements`,
  };
}

/** Whether a finding's centre (mean voxel) lies in the probe's lung mask, or within `marginMm` of it. */
function inLungs(finding: Finding, volume: CtVolume, probed: ProbedVolume, marginMm: number): boolean {
  const { coarse, anatomy } = probed;
  const centre = maskCentroid(finding, volume.columns);
  const k0 = Math.round(centre.slice);
  const r0 = Math.floor(centre.row / coarse.factor);
  const c0 = Math.floor(centre.column / coarse.factor);
  const dk = Math.ceil(marginMm / coarse.sliceMm);
  const dr = Math.ceil(marginMm / coarse.pixelMm[0]);
  const dc = Math.ceil(marginMm / coarse.pixelMm[1]);
  const plane = coarse.rows * coarse.columns;
  for (let k = Math.max(0, k0 - dk); k <= Math.min(coarse.slices - 1, k0 + dk); k += 1) {
    for (let r = Math.max(0, r0 - dr); r <= Math.min(coarse.rows - 1, r0 + dr); r += 1) {
      for (let c = Math.max(0, c0 - dc); c <= Math.min(coarse.columns - 1, c0 + dc); c += 1) {
        if (anatomy.lungs[k * plane + r * coarse.columns + c]) return true;
      }
    }
  }
  return false;
}

export function findingsPlan({ job, pipelineOrdinal, model }: PlanTarget): OutputPlan {
  const { manifest } = model;
  const srSeriesUid = outputSeriesUid(job, "sr-series");
  const segSeriesUid = outputSeriesUid(job, "seg-series");
  const cap = manifest.outputChecks.find((c) => c.measure === "findings")?.max ?? 20;
  const sr: StoredSeries = { kind: "sr", seriesInstanceUID: srSeriesUid, sopClassUID: SopClass.Comprehensive3dSr };
  const seg: StoredSeries = { kind: "seg", seriesInstanceUID: segSeriesUid, sopClassUID: SopClass.Segmentation };
  return {
    seriesUids: [srSeriesUid, segSeriesUid],
    outputSeries: [sr, seg],
    completion: () => ({ seriesUid: srSeriesUid, instances: 1 }),
    overwritesInput: true,
    async produce(volume, io) {
      const classifier = manifest.candidateClassifier;
      // The classifier's patches are HU: kept aside, as the map is written over the volume's.
      const patchHu = classifier ? await huForPatches(volume.hu) : undefined;
      let probability: Float32Array;
      try {
        const result = await io.inference.run(model, volume, "over-input", { onProgress: io.onProgress, deadline: io.inferDeadline });
        probability = result.output;
        volume.hu = probability; // the input's memory, now the map: the volume keeps its geometry and headers
        io.onInferenceDone(result);
      } catch (error) {
        throw inferenceFailure(model, error);
      }
      const inferenceDone = performance.now();
      let findings: Finding[];
      let outside: number;
      try {
        // All of them: how many there are is what tells a detector that misfired.
        const all = await findingsFromProbability(probability, volume, {
          threshold: manifest.threshold ?? 0.5,
          minVolumeMm3: manifest.findings.minVolumeMm3,
          maxFindings: Number.MAX_SAFE_INTEGER,
          findingCode: manifest.findings.code,
          findingSiteCode: manifest.findings.site,
          trackingNamespace: srSeriesUid,
          trackingLabel: manifest.findings.label,
        });
        findings = all.filter((f) => inLungs(f, volume, io.probed, manifest.findings.lungMarginMm));
        outside = all.length - findings.length;
      } catch (error) {
        throw asStageError(Stage.Write, error);
      }
      let classified = "";
      if (patchHu) {
        try {
          const rules = { trackingNamespace: srSeriesUid, trackingLabel: manifest.findings.label };
          const result = await classifyCandidates(io.inference, model, { ...volume, hu: patchHu }, findings, rules, io.inferDeadline);
          classified = `${result.candidates} candidates, ${result.kept.length} kept by the classifier; `;
          findings = result.kept;
        } catch (error) {
          throw inferenceFailure(model, error);
        }
      }
      const measures = new OutputMeasures(volume, io.probed, manifest.outputChecks);
      measures.setFindings(findings.length, outside);
      const checks = measures.verdicts();
      const failed = failedChecks(checks);
      if (failed.length > 0 && !io.overridden) {
        return { summary: `${classified}output rejected by its checks; nothing stored`, stored: 0, storeTailMs: 0, checks, rejected: true, outputs: [] };
      }
      const overridden = [...(io.overridden ?? []), ...failed];
      // A forced run past the cap reports the most probable, as many as allowed.
      const oversize = oversizeFindings(findings.slice(0, cap), manifest);
      findings = oversize.findings;
      const instances = await encode(volume, findings, manifest, {
        srSeriesUid, segSeriesUid, seriesNumber: outputSeriesNumber(volume, pipelineOrdinal),
        parameters: [
          detectorScope(manifest), ...confidenceStatement(manifest), ...(oversize.statement ? [oversize.statement] : []),
          ...(overridden.length > 0 ? [overrideStatement(overridden)] : []),
        ],
      });
      // The SR (the last instance) only once the SEG is stored, in a request of its own: whatever the store settings,
      // a present SR means the output is whole (the completion a restarted job checks).
      const segs = instances.slice(0, -1);
      const stored = await storeOutputInstances(io.endpoint, volume.studyInstanceUID, segs, io.store) +
        await storeOutputInstances(io.endpoint, volume.studyInstanceUID, instances.slice(-1), io.store);
      const dropped = (outside > 0 ? ` (${outside} outside the lungs dropped)` : "") +
        (oversize.count > 0 ? ` (${oversize.count} over ${manifest.findings.diameterMm.max} mm reported as outside the scope)` : "");
      return {
        summary: `${classified}${findings.length} finding(s)${dropped}; SR series ${srSeriesUid}` + (findings.length > 0 ? `, SEG series ${segSeriesUid}` : ""),
        stored,
        storeTailMs: performance.now() - inferenceDone,
        checks,
        rejected: false,
        outputs: findings.length > 0 ? [{ ...sr, instances: 1 }, { ...seg, instances: 1 }] : [{ ...sr, instances: 1 }],
        findings: { count: findings.length, scope: detectorScope(manifest), items: findings.map(findingSummary) },
      };
    },
    async storedFindings(endpoint, studyUid, signal) {
      const report = await firstInstance(endpoint, studyUid, srSeriesUid, signal);
      if (!report) throw new ReportReadError(`the report series ${srSeriesUid} is no longer in Orthanc`);
      const found = await reportedFindings(report, () => firstInstance(endpoint, studyUid, segSeriesUid, signal));
      return { count: found.length, scope: detectorScope(manifest), items: found.map(findingSummary) };
    },
  };
}

/** The one instance of a stored output series (SR or SEG) over WADO-RS; none when the PACS has no such series. */
async function firstInstance(endpoint: DicomwebEndpoint, studyUid: string, seriesUid: string, signal: AbortSignal): Promise<Uint8Array | undefined> {
  try {
    for await (const instance of retrieveSeries(endpoint, studyUid, seriesUid, { signal })) return instance;
  } catch (error) {
    if (error instanceof DicomwebError && error.status === 404) return undefined;
    throw error;
  }
  return undefined;
}

/** A finding as a result notification tells of it: what, where, how big, how sure (no mask). */
export function findingSummary(finding: ReportedFinding): FindingSummary {
  const term = ({ value, scheme, meaning }: ReportedFinding["findingCode"]) => ({ code: value, scheme, meaning });
  return {
    trackingId: finding.trackingId,
    trackingUID: finding.trackingUid,
    type: term(finding.findingCode),
    site: term(finding.findingSiteCode),
    longestDiameterMm: Math.round(finding.longestDiameterMm * 10) / 10,
    volumeMm3: Math.round(finding.volumeMm3),
    probability: Math.round(finding.probability * 1000) / 1000,
    centroidPatientMm: finding.centroidPatientMm.map((v) => Math.round(v * 10) / 10) as [number, number, number],
  };
}

/** SEG (when there are findings) and SR, encoded in a worker thread. */
async function encode(
  volume: CtVolume,
  findings: Finding[],
  manifest: ModelManifest,
  identity: { srSeriesUid: string; segSeriesUid: string; seriesNumber: number; parameters: string[] },
): Promise<Uint8Array[]> {
  const contentDate = new Date();
  const algorithm: AlgorithmIdentity = {
    name: manifest.name,
    version: SOFTWARE_VERSION,
    modelId: manifest.id,
    modelVersion: manifest.version,
    modelSha256: manifest.sha256,
    ...(manifest.candidateClassifier ? { companionSha256s: [manifest.candidateClassifier.sha256] } : {}),
    manufacturer: SOFTWARE_NAME,
    parameters: identity.parameters,
  };
  const { diameterMm, label } = manifest.findings;
  try {
    return await encodeFindingsInstances({
      volume,
      findings,
      algorithm,
      sr: {
        seriesInstanceUID: identity.srSeriesUid,
        sopInstanceUID: deterministicUid(SOFTWARE_NAME, "sr-instance", identity.srSeriesUid),
        seriesNumber: identity.seriesNumber,
        contentDate,
      },
      ...(findings.length > 0
        ? { seg: {
          seriesInstanceUID: identity.segSeriesUid,
          sopInstanceUID: deterministicUid(SOFTWARE_NAME, "seg-instance", identity.segSeriesUid),
          seriesNumber: identity.seriesNumber + 1,
          contentDate,
        } }
        : {}),
      searchedFor: manifest.findings.code,
      searchedSite: manifest.findings.site,
      noFindingLabel: `No ${label.toLowerCase()} of ${diameterMm.min}-${diameterMm.max} mm found in the lungs`,
    });
  } catch (error) {
    throw asStageError(Stage.Write, error);
  }
}
