/**
 * The output plan of detection models: the probability map (written over the input volume: one volume in memory)
 * becomes findings, stored as a DICOM SEG (one segment per finding) and a TID 1500 SR that references it, in the
 * source study. A series with no finding still gets a report that says so. The SR is stored last: its presence means
 * the output is whole.
 */
import type { AlgorithmIdentity, Finding } from "../../dicom/finding.js";
import { encodeFindingsInstances } from "../../dicom/findings-instances.js";
import { deterministicUid } from "../../dicom/uid.js";
import { findingsFromProbability } from "../../models/probability-findings.js";
import { asStageError, Stage } from "../../stage-error.js";
import { SOFTWARE_NAME, SOFTWARE_VERSION } from "../../version.js";
import { storeOutputInstances } from "../stages/store-instances.js";
import { inferenceFailure, type OutputPlan, outputSeriesNumber, outputSeriesUid, type PlanTarget } from "./output-plan.js";

export function findingsPlan({ job, pipelineOrdinal, model }: PlanTarget): OutputPlan {
  const { manifest } = model;
  const srSeriesUid = outputSeriesUid(job, "sr-series");
  const segSeriesUid = outputSeriesUid(job, "seg-series");
  return {
    seriesUids: [srSeriesUid, segSeriesUid],
    completion: () => ({ seriesUid: srSeriesUid, instances: 1 }),
    async produce(volume, io) {
      let probability: Float32Array;
      try {
        const result = await io.inference.run(model, volume, "over-input", { onProgress: io.onProgress });
        probability = result.output;
        volume.hu = probability; // the input's memory, now the map: the volume keeps its geometry and headers
        io.onInferenceDone(result);
      } catch (error) {
        throw inferenceFailure(model, error);
      }
      const inferenceDone = performance.now();
      const contentDate = new Date();
      const seriesNumber = outputSeriesNumber(volume, pipelineOrdinal);
      const algorithm: AlgorithmIdentity = {
        name: manifest.name,
        version: SOFTWARE_VERSION,
        modelId: manifest.id,
        modelVersion: manifest.version,
        manufacturer: SOFTWARE_NAME,
      };
      let findings: Finding[];
      let instances: Uint8Array[];
      try {
        findings = await findingsFromProbability(probability, volume, {
          threshold: manifest.threshold ?? 0.5,
          minVolumeMm3: manifest.findings.minVolumeMm3,
          maxFindings: manifest.findings.maxFindings,
          findingCode: manifest.findings.code,
          findingSiteCode: manifest.findings.site,
          trackingNamespace: srSeriesUid,
          trackingLabel: manifest.findings.label,
        });
        const seg = {
          seriesInstanceUID: segSeriesUid,
          sopInstanceUID: deterministicUid(SOFTWARE_NAME, "seg-instance", segSeriesUid),
          seriesNumber: seriesNumber + 1,
          contentDate,
        };
        instances = await encodeFindingsInstances({
          volume,
          findings,
          algorithm,
          sr: {
            seriesInstanceUID: srSeriesUid,
            sopInstanceUID: deterministicUid(SOFTWARE_NAME, "sr-instance", srSeriesUid),
            seriesNumber,
            contentDate,
          },
          ...(findings.length > 0 ? { seg } : {}),
          searchedFor: manifest.findings.code,
          searchedSite: manifest.findings.site,
        });
      } catch (error) {
        throw asStageError(Stage.Write, error);
      }
      const stored = await storeOutputInstances(io.endpoint, volume.studyInstanceUID, instances, io.store);
      return {
        summary: `${findings.length} finding(s); SR series ${srSeriesUid}` + (findings.length > 0 ? `, SEG series ${segSeriesUid}` : ""),
        stored,
        storeTailMs: performance.now() - inferenceDone,
      };
    },
  };
}
