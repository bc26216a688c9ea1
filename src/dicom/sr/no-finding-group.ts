/**
 * TID 1501 Measurement and Qualitative Evaluation Group for a report with no findings: one qualitative evaluation,
 * "<what was searched for> = Absent" (CID 240 Present-Absent), at the searched site, by the algorithm.
 * TID 1500 wants at least one group in Imaging Measurements when that container is present, and OHIF and the
 * Cornerstone3D adapter both expect the container; this group keeps the report conformant and readable by both
 * while saying plainly that nothing was found.
 */
import type { AlgorithmIdentity, CodedConcept } from "../finding.js";
import { algorithmIdentification } from "./algorithm-identification.js";
import { ABSENT, FINDING_SITE, MEASUREMENT_GROUP, TEMPLATE } from "./codes.js";
import { codeItem, containerItem, type ContentItem } from "./content-items.js";
import { trackingItems } from "./volumetric-roi.js";

export interface NoFindingStatement {
  /** e.g. "No nodule detected" */
  trackingId: string;
  trackingUid: string;
  /** What was looked for, e.g. (27925004, SCT, "Nodule"). */
  searchedFor: CodedConcept;
  site: CodedConcept;
}

export function noFindingGroup(statement: NoFindingStatement, algorithm: AlgorithmIdentity): ContentItem {
  return containerItem(
    "CONTAINS",
    MEASUREMENT_GROUP,
    [
      ...trackingItems(statement),
      ...algorithmIdentification(algorithm),
      codeItem("HAS CONCEPT MOD", FINDING_SITE, statement.site),
      codeItem("CONTAINS", statement.searchedFor, ABSENT),
    ],
    TEMPLATE.measurementGroup,
  );
}
