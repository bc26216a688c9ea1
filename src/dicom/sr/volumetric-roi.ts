/**
 * TID 1411 Volumetric ROI Measurements and Qualitative Evaluations, one group per finding: who it is (tracking
 * identifier and UID), what and where (Finding, Finding Site), which algorithm (TID 4019), the region as a reference
 * to its segment in the SEG instance (Referenced Segment + Source Series for Segmentation), and TID 1419 ROI
 * Measurements: Volume (mm3) and the model's confidence as Certainty of Finding (%). The finding's Long Axis is in its
 * TID 1410 group (planar-roi.ts), beside the line it was measured along: the report states it once.
 */
import type { AlgorithmIdentity, Finding } from "../finding.js";
import { SopClass } from "../part10.js";
import { algorithmIdentification } from "./algorithm-identification.js";
import {
  CERTAINTY_OF_FINDING,
  FINDING,
  FINDING_SITE,
  MEASUREMENT_GROUP,
  REFERENCED_SEGMENT,
  SOURCE_SERIES_FOR_SEGMENTATION,
  TEMPLATE,
  TRACKING_IDENTIFIER,
  TRACKING_UNIQUE_IDENTIFIER,
  UCUM_CUBIC_MILLIMETER,
  UCUM_PERCENT,
  VOLUME,
} from "./codes.js";
import { codeItem, containerItem, type ContentItem, imageItem, numItem, textItem, uidrefItem } from "./content-items.js";


export interface SegmentRef {
  /** SOPInstanceUID of the SEG instance holding the finding's mask. */
  sopInstanceUID: string;
  /** Segment Number (0062,0004) of the finding's segment in that instance. */
  segmentNumber: number;
  /** The series the segmentation was made from (the CT series). */
  sourceSeriesInstanceUID: string;
}

/** The tracking items every group of one finding starts with; OHIF merges groups that share the UID. */
export function trackingItems(finding: Pick<Finding, "trackingId" | "trackingUid">): ContentItem[] {
  return [
    textItem("HAS OBS CONTEXT", TRACKING_IDENTIFIER, finding.trackingId),
    uidrefItem("HAS OBS CONTEXT", TRACKING_UNIQUE_IDENTIFIER, finding.trackingUid),
  ];
}

/** What opens every measurement group of a finding: its tracking identifiers, the finding, the algorithm, the site. */
export function findingItems(finding: Finding, algorithm: AlgorithmIdentity): ContentItem[] {
  return [
    ...trackingItems(finding),
    codeItem("CONTAINS", FINDING, finding.findingCode),
    ...algorithmIdentification(algorithm),
    codeItem("HAS CONCEPT MOD", FINDING_SITE, finding.findingSiteCode),
  ];
}

export function volumetricRoiGroup(finding: Finding, algorithm: AlgorithmIdentity, segment: SegmentRef): ContentItem {
  if (!Number.isInteger(segment.segmentNumber) || segment.segmentNumber < 1) {
    throw new RangeError(`segment.segmentNumber: ${segment.segmentNumber} is not a segment number (1..n)`);
  }
  return containerItem(
    "CONTAINS",
    MEASUREMENT_GROUP,
    [
      ...findingItems(finding, algorithm),
      imageItem("CONTAINS", REFERENCED_SEGMENT, {
        sopClassUID: SopClass.Segmentation,
        sopInstanceUID: segment.sopInstanceUID,
        segmentNumber: segment.segmentNumber,
      }),
      uidrefItem("CONTAINS", SOURCE_SERIES_FOR_SEGMENTATION, segment.sourceSeriesInstanceUID),
      numItem("CONTAINS", VOLUME, finding.volumeMm3, UCUM_CUBIC_MILLIMETER),
      numItem("CONTAINS", CERTAINTY_OF_FINDING, finding.probability * 100, UCUM_PERCENT),
    ],
    TEMPLATE.volumetricRoi,
  );
}
