/**
 * TID 1500 Measurement Report for detection findings, as a Comprehensive 3D SR instance in the source study.
 *
 * Content tree (root CONTAINER "Imaging Measurement Report"):
 *   Language (TID 1204) · device Observation Context (TID 1001/1002/1004) · Procedure reported
 *   · Image Library (TID 1600): every source CT instance
 *   · Imaging Measurements: per finding a TID 1410 group (its long axis: a two-point SCOORD POLYLINE on the source
 *     image where the finding is largest, and the Long Axis NUM measured along it) then a TID 1411 group (SEG
 *     segment, Volume, Certainty of Finding), sharing its tracking UID; with no findings, one TID 1501 group saying
 *     "<searched finding> = Absent".
 * The header marks the series as AI-generated and not for diagnostic use; identity (UIDs, numbers, date) is passed
 * in, so the same input gives the same bytes.
 */
import type { CtVolume } from "../ct-volume.js";
import { type AlgorithmIdentity, type CodedConcept, type Finding, validateCodedConcept } from "../finding.js";
import { segmentNumberOf } from "../seg.js";
import { deterministicUid } from "../uid.js";
import {
  CT_OF_CHEST,
  IMAGING_MEASUREMENT_REPORT,
  IMAGING_MEASUREMENTS,
  LANGUAGE_ENGLISH_US,
  LANGUAGE_OF_CONTENT_ITEM_AND_DESCENDANTS,
  LUNG,
  NODULE,
  PROCEDURE_REPORTED,
  TEMPLATE,
} from "./codes.js";
import { codeSequenceItem } from "../coded-concept.js";
import { codeItem, containerItem, type ContentItem } from "./content-items.js";
import { SopClass, writePart10 } from "../part10.js";
import { type ResultInstanceIdentity, resultInstanceHeader, validateResultInput } from "../result-instance.js";
import { isUid } from "../value-formats.js";
import { imageLibrary } from "./image-library.js";
import { noFindingGroup } from "./no-finding-group.js";
import { deviceObservationContext } from "./observation-context.js";
import { longAxis } from "../long-axis.js";
import { longAxisGroup } from "./planar-roi.js";
import { volumetricRoiGroup } from "./volumetric-roi.js";

export const DEFAULT_SR_SERIES_DESCRIPTION = "AI-generated findings (SR) NOT FOR DIAGNOSTIC USE";

/** The SEG instance holding the findings' masks: findings[i] is segment i + 1. */
export interface SegmentationInstanceRef {
  seriesInstanceUID: string;
  sopInstanceUID: string;
}

export interface MeasurementReportInput {
  volume: CtVolume;
  findings: readonly Finding[];
  algorithm: AlgorithmIdentity;
  identity: ResultInstanceIdentity;
  /** Required when there are findings (TID 1411 references their segments). */
  segmentation?: SegmentationInstanceRef;
  /** Default: the source's Procedure Code Sequence, else (169069000, SCT, "CT of chest"); see procedureReported. */
  procedureReported?: CodedConcept;
  /** What the algorithm looks for; with no findings the report says "<this> = Absent". Default Nodule. */
  searchedFor?: CodedConcept;
  /** Where it looks; default Lung. */
  searchedSite?: CodedConcept;
  /** The no-finding group's tracking identifier, which says what was not found, e.g. "No nodule of 3-30 mm found". */
  noFindingLabel?: string;
}

function validateInput(input: MeasurementReportInput): void {
  const { volume } = input;
  if (!volume || !Array.isArray(volume.sourceSlices) || volume.sourceSlices.length === 0) {
    throw new RangeError("volume.sourceSlices: at least one source slice is required");
  }
  if (!isUid(volume.frameOfReferenceUID)) throw new RangeError("volume.frameOfReferenceUID: is not a UID");
  if (!isUid(volume.seriesInstanceUID)) throw new RangeError("volume.seriesInstanceUID: is not a UID");
  validateResultInput(input);
  if (input.findings.length > 0) {
    if (!input.segmentation) throw new RangeError("segmentation: is required when there are findings");
    if (!isUid(input.segmentation.sopInstanceUID)) throw new RangeError("segmentation.sopInstanceUID: is not a UID");
    if (!isUid(input.segmentation.seriesInstanceUID)) throw new RangeError("segmentation.seriesInstanceUID: is not a UID");
  }
  if (input.procedureReported) validateCodedConcept(input.procedureReported, "procedureReported");
  if (input.searchedFor) validateCodedConcept(input.searchedFor, "searchedFor");
  if (input.searchedSite) validateCodedConcept(input.searchedSite, "searchedSite");
}

function measurementGroups(input: MeasurementReportInput): ContentItem[] {
  const { volume, findings, algorithm, segmentation } = input;
  if (findings.length === 0) {
    const searchedFor = input.searchedFor ?? NODULE;
    return [
      noFindingGroup(
        {
          trackingId: (input.noFindingLabel ?? `No ${searchedFor.meaning.toLowerCase()} detected`).slice(0, 64),
          trackingUid: deterministicUid("ct-enhance", "no-finding", input.identity.sopInstanceUID),
          searchedFor,
          site: input.searchedSite ?? LUNG,
        },
        algorithm,
      ),
    ];
  }
  // The long axis is measured here, from the mask, so the figure the report gives is the line it draws.
  return findings.flatMap((finding, i) => [
    longAxisGroup(finding, algorithm, longAxis(finding.mask, volume), volume),
    volumetricRoiGroup(finding, algorithm, {
      sopInstanceUID: segmentation!.sopInstanceUID,
      segmentNumber: segmentNumberOf(i),
      sourceSeriesInstanceUID: volume.seriesInstanceUID,
    }),
  ]);
}

/**
 * TID 1500 row 4 Procedure Reported: the imaging procedure the algorithm analysed (IHE AIR). The caller's code if
 * given; else the source's own Procedure Code Sequence (0008,1032) when its first item is a valid code; else CT of
 * chest, the only procedure a shipped detector runs on (its intended use is the chest).
 */
export function procedureReported(input: Pick<MeasurementReportInput, "procedureReported" | "volume">): CodedConcept {
  if (input.procedureReported) return input.procedureReported;
  const source = input.volume.sliceHeaders[0]?.ProcedureCodeSequence;
  const item = (Array.isArray(source) ? source[0] : source) as Record<string, unknown> | undefined;
  if (!item) return CT_OF_CHEST;
  const code = { value: item.CodeValue, scheme: item.CodingSchemeDesignator, meaning: item.CodeMeaning } as CodedConcept;
  try {
    validateCodedConcept(code, "ProcedureCodeSequence");
    return code;
  } catch {
    return CT_OF_CHEST; // the source's code is not one we can write as it is
  }
}

/** The document's content: the root container's items (the root's own name and template are in the header). */
export function measurementReportContent(input: MeasurementReportInput): ContentItem[] {
  validateInput(input);
  return [
    codeItem("HAS CONCEPT MOD", LANGUAGE_OF_CONTENT_ITEM_AND_DESCENDANTS, LANGUAGE_ENGLISH_US),
    ...deviceObservationContext(input.algorithm),
    codeItem("HAS CONCEPT MOD", PROCEDURE_REPORTED, procedureReported(input)),
    imageLibrary(input.volume.sourceSlices),
    containerItem("CONTAINS", IMAGING_MEASUREMENTS, measurementGroups(input)),
  ];
}

function evidence(input: MeasurementReportInput): Record<string, unknown>[] {
  const { volume, segmentation, findings } = input;
  const series: Record<string, unknown>[] = [
    {
      SeriesInstanceUID: volume.seriesInstanceUID,
      ReferencedSOPSequence: volume.sourceSlices.map((s) => ({
        ReferencedSOPClassUID: s.sopClassUID,
        ReferencedSOPInstanceUID: s.sopInstanceUID,
      })),
    },
  ];
  if (segmentation && findings.length > 0) {
    series.push({
      SeriesInstanceUID: segmentation.seriesInstanceUID,
      ReferencedSOPSequence: [
        { ReferencedSOPClassUID: SopClass.Segmentation, ReferencedSOPInstanceUID: segmentation.sopInstanceUID },
      ],
    });
  }
  return [{ StudyInstanceUID: volume.studyInstanceUID, ReferencedSeriesSequence: series }];
}

const SR_OBJECT = { sopClassUID: SopClass.Comprehensive3dSr, modality: "SR", seriesDescription: DEFAULT_SR_SERIES_DESCRIPTION } as const;

/** The whole SR instance as a dcmjs naturalized dataset. */
export function buildMeasurementReport(input: MeasurementReportInput): Record<string, unknown> {
  const content = measurementReportContent(input);
  const { volume, identity, algorithm } = input;
  return {
    ...resultInstanceHeader(SR_OBJECT, volume, identity, algorithm),
    ReferencedPerformedProcedureStepSequence: [],
    // SR Document General
    CompletionFlag: "COMPLETE",
    VerificationFlag: "UNVERIFIED",
    PerformedProcedureCodeSequence: [],
    CurrentRequestedProcedureEvidenceSequence: evidence(input),
    // SR Document Content: the root container
    ValueType: "CONTAINER",
    ConceptNameCodeSequence: [codeSequenceItem(IMAGING_MEASUREMENT_REPORT)],
    ContinuityOfContent: "SEPARATE",
    ContentTemplateSequence: [{ MappingResource: "DCMR", TemplateIdentifier: TEMPLATE.measurementReport }],
    ContentSequence: content,
  };
}

/** The SR instance as a Part-10 file (Explicit VR Little Endian). */
export function writeMeasurementReport(input: MeasurementReportInput): Uint8Array {
  return writePart10(buildMeasurementReport(input));
}
