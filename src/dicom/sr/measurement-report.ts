/**
 * TID 1500 Measurement Report for detection findings, as a Comprehensive 3D SR instance in the source study.
 *
 * Content tree (root CONTAINER "Imaging Measurement Report"):
 *   Language (TID 1204) · device Observation Context (TID 1001/1002/1004) · Procedure reported
 *   · Image Library (TID 1600): every source CT instance
 *   · Imaging Measurements: per finding a TID 1411 group (SEG segment + Long Axis, Volume, Certainty of Finding) and
 *     a TID 1410 group (centroid SCOORD3D POINT) sharing its tracking identifier and UID; with no findings, one
 *     TID 1501 group saying "<searched finding> = Absent".
 * The header marks the series as AI-generated and not for diagnostic use; identity (UIDs, numbers, date) is passed
 * in, so the same input gives the same bytes.
 */
import type { CtVolume } from "../ct-volume.js";
import {
  type AlgorithmIdentity,
  type CodedConcept,
  type Finding,
  validateAlgorithmIdentity,
  validateCodedConcept,
  validateFindings,
} from "../finding.js";
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
import { codeItem, codeSequenceItem, containerItem, type ContentItem } from "./content-items.js";
import { formatDA, formatTM, isUid, patientAndStudyFrom, validateSeriesDescription, writePart10 } from "./dicom-file.js";
import { imageLibrary } from "./image-library.js";
import { noFindingGroup } from "./no-finding-group.js";
import { deviceObservationContext, deviceObserverUid } from "./observation-context.js";
import { centroidPointGroup } from "./planar-roi.js";
import { SEGMENTATION_STORAGE, volumetricRoiGroup } from "./volumetric-roi.js";

export const COMPREHENSIVE_3D_SR_STORAGE = "1.2.840.10008.5.1.4.1.1.88.34";
export const DEFAULT_SR_SERIES_DESCRIPTION = "AI-generated findings (SR) NOT FOR DIAGNOSTIC USE";

/** Who the SR instance is; all explicit so that a re-run of the same job writes the same instance. */
export interface SrIdentity {
  seriesInstanceUID: string;
  sopInstanceUID: string;
  seriesNumber: number;
  /** Default 1. */
  instanceNumber?: number;
  /** Default DEFAULT_SR_SERIES_DESCRIPTION; must say AI-generated / not for diagnostic use. */
  seriesDescription?: string;
  /** Content Date/Time and Series Date/Time, written in UTC with Timezone Offset From UTC +0000. */
  contentDate: Date;
}

/** The SEG instance holding the findings' masks: findings[i] is segment i + 1. */
export interface SegmentationInstanceRef {
  seriesInstanceUID: string;
  sopInstanceUID: string;
}

export interface MeasurementReportInput {
  volume: CtVolume;
  findings: readonly Finding[];
  algorithm: AlgorithmIdentity;
  identity: SrIdentity;
  /** Required when there are findings (TID 1411 references their segments). */
  segmentation?: SegmentationInstanceRef;
  /** Default (169069000, SCT, "CT of chest"). */
  procedureReported?: CodedConcept;
  /** What the algorithm looks for; with no findings the report says "<this> = Absent". Default Nodule. */
  searchedFor?: CodedConcept;
  /** Where it looks; default Lung. */
  searchedSite?: CodedConcept;
}

function validateInput(input: MeasurementReportInput): void {
  const { volume, identity } = input;
  if (!volume || !Array.isArray(volume.sourceSlices) || volume.sourceSlices.length === 0) {
    throw new RangeError("volume.sourceSlices: at least one source slice is required");
  }
  if (!isUid(volume.frameOfReferenceUID)) throw new RangeError("volume.frameOfReferenceUID: is not a UID");
  if (!isUid(volume.seriesInstanceUID)) throw new RangeError("volume.seriesInstanceUID: is not a UID");
  validateFindings(input.findings, volume);
  validateAlgorithmIdentity(input.algorithm);
  if (!identity) throw new RangeError("identity: is required");
  if (!isUid(identity.seriesInstanceUID)) throw new RangeError("identity.seriesInstanceUID: is not a UID");
  if (!isUid(identity.sopInstanceUID)) throw new RangeError("identity.sopInstanceUID: is not a UID");
  if (identity.seriesInstanceUID === volume.seriesInstanceUID) {
    throw new RangeError("identity.seriesInstanceUID: must be a new series, not the source series");
  }
  if (!Number.isInteger(identity.seriesNumber) || identity.seriesNumber < 0) {
    throw new RangeError("identity.seriesNumber: must be a non-negative integer");
  }
  if (identity.instanceNumber !== undefined && (!Number.isInteger(identity.instanceNumber) || identity.instanceNumber < 1)) {
    throw new RangeError("identity.instanceNumber: must be a positive integer");
  }
  validateSeriesDescription(identity.seriesDescription);
  if (!(identity.contentDate instanceof Date) || Number.isNaN(identity.contentDate.getTime())) {
    throw new RangeError("identity.contentDate: must be a valid Date");
  }
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
          trackingId: `No ${searchedFor.meaning.toLowerCase()} detected`.slice(0, 64),
          trackingUid: deterministicUid("ct-enhance", "no-finding", input.identity.sopInstanceUID),
          searchedFor,
          site: input.searchedSite ?? LUNG,
        },
        algorithm,
      ),
    ];
  }
  return findings.flatMap((finding, i) => [
    volumetricRoiGroup(finding, algorithm, {
      sopInstanceUID: segmentation!.sopInstanceUID,
      segmentNumber: segmentNumberOf(i),
      sourceSeriesInstanceUID: volume.seriesInstanceUID,
    }),
    centroidPointGroup(finding, algorithm, volume.frameOfReferenceUID),
  ]);
}

/** The document's content: the root container's items (the root's own name and template are in the header). */
export function measurementReportContent(input: MeasurementReportInput): ContentItem[] {
  validateInput(input);
  return [
    codeItem("HAS CONCEPT MOD", LANGUAGE_OF_CONTENT_ITEM_AND_DESCENDANTS, LANGUAGE_ENGLISH_US),
    ...deviceObservationContext(input.algorithm),
    codeItem("HAS CONCEPT MOD", PROCEDURE_REPORTED, input.procedureReported ?? CT_OF_CHEST),
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
        { ReferencedSOPClassUID: SEGMENTATION_STORAGE, ReferencedSOPInstanceUID: segmentation.sopInstanceUID },
      ],
    });
  }
  return [{ StudyInstanceUID: volume.studyInstanceUID, ReferencedSeriesSequence: series }];
}

/** The whole SR instance as a dcmjs naturalized dataset. */
export function buildMeasurementReport(input: MeasurementReportInput): Record<string, unknown> {
  const content = measurementReportContent(input);
  const { volume, identity, algorithm } = input;
  const header = volume.sliceHeaders[0];
  const date = formatDA(identity.contentDate);
  const time = formatTM(identity.contentDate);
  return {
    SpecificCharacterSet: "ISO_IR 192",
    InstanceCreationDate: date,
    InstanceCreationTime: time,
    TimezoneOffsetFromUTC: "+0000",
    SOPClassUID: COMPREHENSIVE_3D_SR_STORAGE,
    SOPInstanceUID: identity.sopInstanceUID,
    ...patientAndStudyFrom(header),
    StudyInstanceUID: volume.studyInstanceUID,
    // SR Document Series
    Modality: "SR",
    SeriesInstanceUID: identity.seriesInstanceUID,
    SeriesNumber: identity.seriesNumber,
    SeriesDate: date,
    SeriesTime: time,
    SeriesDescription: identity.seriesDescription ?? DEFAULT_SR_SERIES_DESCRIPTION,
    ReferencedPerformedProcedureStepSequence: [],
    // General and Enhanced General Equipment: the algorithm is the device
    Manufacturer: algorithm.manufacturer,
    ManufacturerModelName: `${algorithm.modelId} ${algorithm.modelVersion}`.slice(0, 64),
    DeviceSerialNumber: deviceObserverUid(algorithm),
    SoftwareVersions: [algorithm.version],
    // SR Document General
    InstanceNumber: identity.instanceNumber ?? 1,
    CompletionFlag: "COMPLETE",
    VerificationFlag: "UNVERIFIED",
    ContentDate: date,
    ContentTime: time,
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
