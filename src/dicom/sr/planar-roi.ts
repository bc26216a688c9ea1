/**
 * TID 1410 Planar ROI Measurements and Qualitative Evaluations, used for one thing: the finding's centroid as an
 * Image Region SCOORD3D POINT in the source Frame of Reference. It carries the same Tracking Identifier and Tracking
 * Unique Identifier as the finding's TID 1411 group, so readers that merge groups by tracking UID (OHIF) see one
 * finding with a location, its segment and its measurements. The point is kept in its own group because TID 1411
 * allows one kind of region reference per group (here: the SEG segment), and because the Cornerstone3D SR adapter
 * only reads a top-level point from a group without NUM items.
 */
import type { AlgorithmIdentity, Finding } from "../finding.js";
import { IMAGE_REGION, MEASUREMENT_GROUP, TEMPLATE } from "./codes.js";
import { containerItem, type ContentItem, scoord3dPointItem } from "./content-items.js";
import { findingItems } from "./volumetric-roi.js";

export function centroidPointGroup(finding: Finding, algorithm: AlgorithmIdentity, frameOfReferenceUID: string): ContentItem {
  if (!frameOfReferenceUID) throw new RangeError("frameOfReferenceUID: is required for a SCOORD3D point");
  return containerItem(
    "CONTAINS",
    MEASUREMENT_GROUP,
    [
      ...findingItems(finding, algorithm),
      scoord3dPointItem("CONTAINS", IMAGE_REGION, finding.centroidPatientMm, frameOfReferenceUID),
    ],
    TEMPLATE.planarRoi,
  );
}
