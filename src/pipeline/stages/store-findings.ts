/**
 * Stages write + store for detection: the probability map becomes findings, written as a DICOM SEG (the masks, one
 * segment per finding) and a TID 1500 SR that references it, both stored over STOW-RS into the source study. A series
 * with no finding still gets a report that says so. UIDs are deterministic per job run, like the derived CT's.
 */
import type { CtVolume } from "../../dicom/ct-volume.js";
import type { AlgorithmIdentity, Finding } from "../../dicom/finding.js";
import { encodeFindingsInstances } from "../../dicom/findings-instances.js";
import { deterministicUid } from "../../dicom/uid.js";
import type { DicomwebEndpoint } from "../../dicomweb/endpoint.js";
import { storeInstances } from "../../dicomweb/stow-rs.js";
import type { ModelManifest } from "../../models/manifest.js";
import { SOFTWARE_NAME, SOFTWARE_VERSION } from "../../version.js";
import { findingsFromProbability } from "../findings.js";
import { asStageError, Stage, StageError } from "../stage-error.js";

export interface FindingsOutput {
  findings: Finding[];
  srSeriesUid: string;
  segSeriesUid: string | undefined;
}

export interface FindingsIdentity {
  /** Seed of every UID: source series, pipeline, model version and run. */
  namespace: string[];
  seriesNumber: number;
}

export function findingsSeriesUids(namespace: string[]): { sr: string; seg: string } {
  return {
    sr: deterministicUid(SOFTWARE_NAME, "sr-series", ...namespace),
    seg: deterministicUid(SOFTWARE_NAME, "seg-series", ...namespace),
  };
}

export async function storeFindings(
  endpoint: DicomwebEndpoint,
  volume: CtVolume,
  probability: Float32Array,
  manifest: ModelManifest,
  identity: FindingsIdentity,
): Promise<FindingsOutput> {
  const uids = findingsSeriesUids(identity.namespace);
  const contentDate = new Date();
  const algorithm: AlgorithmIdentity = {
    name: manifest.name,
    version: SOFTWARE_VERSION,
    modelId: manifest.id,
    modelVersion: manifest.version,
    manufacturer: SOFTWARE_NAME,
  };
  let instances: Uint8Array[];
  let findings: Finding[];
  try {
    findings = await findingsFromProbability(probability, volume, {
      threshold: manifest.threshold ?? 0.5,
      minVolumeMm3: manifest.findings.minVolumeMm3,
      maxFindings: manifest.findings.maxFindings,
      findingCode: manifest.findings.code,
      findingSiteCode: manifest.findings.site,
      trackingNamespace: uids.sr,
      trackingLabel: manifest.findings.label,
    });
    const seg = findings.length > 0
      ? {
        seriesInstanceUID: uids.seg,
        sopInstanceUID: deterministicUid(SOFTWARE_NAME, "seg-instance", uids.seg),
        seriesNumber: identity.seriesNumber + 1,
        contentDate,
      }
      : undefined;
    instances = await encodeFindingsInstances({
      volume,
      findings,
      algorithm,
      sr: {
        seriesInstanceUID: uids.sr,
        sopInstanceUID: deterministicUid(SOFTWARE_NAME, "sr-instance", uids.sr),
        seriesNumber: identity.seriesNumber,
        contentDate,
      },
      ...(seg ? { seg } : {}),
      searchedFor: manifest.findings.code,
      searchedSite: manifest.findings.site,
    });
  } catch (error) {
    throw asStageError(Stage.Write, error, false);
  }
  const result = await storeInstances(endpoint, volume.studyInstanceUID, instances);
  if (result.failed.length > 0) {
    const reasons = result.failed.map((f) => `${f.sopInstanceUID}: 0x${f.reason.toString(16)}`).join(", ");
    throw new StageError(Stage.Store, `Orthanc refused the findings: ${reasons}`, true);
  }
  return { findings, srSeriesUid: uids.sr, segSeriesUid: findings.length > 0 ? uids.seg : undefined };
}
