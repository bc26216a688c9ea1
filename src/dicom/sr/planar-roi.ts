/**
 * TID 1410 Planar ROI Measurements and Qualitative Evaluations, one group per finding: its long axis (long-axis.ts)
 * drawn on the source CT image it lies on, as the Image Region (a two-point SCOORD POLYLINE, SELECTED FROM that
 * image), and measured as the TID 1419 "Long Axis" NUM in mm, INFERRED FROM the same line. It carries the finding's
 * Tracking Unique Identifier, so readers that merge groups by tracking UID (OHIF) see one finding with its line, its
 * segment (the TID 1411 group) and its measurements.
 *
 * The shape is the one OHIF 3.13 can list in its measurement panel (read from @ohif/app 3.13.2's build and
 * @cornerstonejs/adapters 5.14 Cornerstone3D/MeasurementReport.js and Length.js):
 * - OHIF's SR hydration picks a Cornerstone3D tool for a group by the group's Tracking Identifier text; a line is the
 *   Length tool only when the text starts with "Cornerstone3DTools@^0.1.0:Length" (the adapter has no other way to
 *   recognise it, unlike a point or a rectangle). So this group's identifier is that prefix followed by the finding's
 *   own identifier ("Cornerstone3DTools@^0.1.0:Length:Nodule 1"); its tracking UID is the finding's.
 * - The Length adapter reads the line from the first NUM's INFERRED FROM SCOORD and its length from that NUM, and
 *   OHIF places it on the image its SELECTED FROM child names (so the SR opens over the source series, not over a
 *   derived series that shares the frame of reference).
 * - OHIF's panel names a measurement by its "Comment" TEXT: the finding's own identifier ("Nodule 1").
 * - This group comes before the finding's TID 1411 group: OHIF merges the groups of a tracking UID into one
 *   measurement and takes the first tracking identifier and the first SCOORD it meets.
 */
import type { CtVolume } from "../ct-volume.js";
import type { AlgorithmIdentity, Finding } from "../finding.js";
import type { LongAxis } from "../long-axis.js";
import { COMMENT, IMAGE_REGION, LONG_AXIS, MEASUREMENT_GROUP, TEMPLATE, UCUM_MILLIMETER } from "./codes.js";
import { containerItem, type ContentItem, type ImageReference, numItem, scoordItem, textItem } from "./content-items.js";
import { findingItems } from "./volumetric-roi.js";

/** The Cornerstone3D adapters' tracking identifier of a Length annotation (cornerstone3DTag.js + ":Length"). */
export const CORNERSTONE3D_LENGTH_TRACKING_PREFIX = "Cornerstone3DTools@^0.1.0:Length";

/** The tracking identifier of a finding's long-axis group: OHIF's Length prefix, then the finding's own identifier. */
export function longAxisTrackingIdentifier(trackingId: string): string {
  return `${CORNERSTONE3D_LENGTH_TRACKING_PREFIX}:${trackingId}`;
}

/** The axis' two ends as SCOORD column/row pairs: pixel centres, (column + 0.5, row + 0.5). */
export function longAxisGraphicData(axis: LongAxis): number[] {
  return axis.ends.flatMap((end) => [end.column + 0.5, end.row + 0.5]);
}

export function longAxisGroup(
  finding: Finding,
  algorithm: AlgorithmIdentity,
  axis: LongAxis,
  volume: Pick<CtVolume, "sourceSlices">,
): ContentItem {
  const source = volume.sourceSlices[axis.slice];
  if (!source) throw new RangeError(`axis.slice: ${axis.slice} has no source image among ${volume.sourceSlices.length}`);
  const image: ImageReference = { sopClassUID: source.sopClassUID, sopInstanceUID: source.sopInstanceUID };
  const line = longAxisGraphicData(axis);
  return containerItem(
    "CONTAINS",
    MEASUREMENT_GROUP,
    [
      ...findingItems({ ...finding, trackingId: longAxisTrackingIdentifier(finding.trackingId) }, algorithm),
      textItem("CONTAINS", COMMENT, finding.trackingId),
      scoordItem("CONTAINS", IMAGE_REGION, "POLYLINE", line, image),
      numItem("CONTAINS", LONG_AXIS, axis.lengthMm, UCUM_MILLIMETER, [scoordItem("INFERRED FROM", undefined, "POLYLINE", line, image)]),
    ],
    TEMPLATE.planarRoi,
  );
}
