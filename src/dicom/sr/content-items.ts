/**
 * SR content items (PS3.3 C.17.3 Document Content Macro, C.18 Content Item Macros) as dcmjs naturalized datasets.
 * One small constructor per value type; templates compose them. Nothing here knows a template.
 */
import { type CodedConcept, codeSequenceItem } from "../coded-concept.js";
import { formatDS } from "../value-formats.js";

export type RelationshipType =
  | "CONTAINS"
  | "HAS OBS CONTEXT"
  | "HAS CONCEPT MOD"
  | "HAS PROPERTIES"
  | "HAS ACQ CONTEXT"
  | "INFERRED FROM"
  | "SELECTED FROM";

/** A content item: keyword-keyed, as dcmjs naturalizes it. */
export type ContentItem = Record<string, unknown>;

function named(relationship: RelationshipType | undefined, valueType: string, name: CodedConcept | undefined): ContentItem {
  const item: ContentItem = {};
  if (relationship) item.RelationshipType = relationship;
  item.ValueType = valueType;
  if (name) item.ConceptNameCodeSequence = [codeSequenceItem(name)];
  return item;
}

export function containerItem(
  relationship: RelationshipType | undefined,
  name: CodedConcept,
  children: ContentItem[],
  templateIdentifier?: string,
): ContentItem {
  const item = named(relationship, "CONTAINER", name);
  item.ContinuityOfContent = "SEPARATE";
  if (templateIdentifier) {
    item.ContentTemplateSequence = [{ MappingResource: "DCMR", TemplateIdentifier: templateIdentifier }];
  }
  if (children.length > 0) item.ContentSequence = children;
  return item;
}

export function codeItem(relationship: RelationshipType, name: CodedConcept, value: CodedConcept): ContentItem {
  return { ...named(relationship, "CODE", name), ConceptCodeSequence: [codeSequenceItem(value)] };
}

export function textItem(relationship: RelationshipType, name: CodedConcept, text: string): ContentItem {
  if (text === "") throw new RangeError(`textItem(${name.meaning}): text must not be empty`);
  return { ...named(relationship, "TEXT", name), TextValue: text };
}

export function uidrefItem(relationship: RelationshipType, name: CodedConcept, uid: string): ContentItem {
  return { ...named(relationship, "UIDREF", name), UID: uid };
}

/** A NUM; `children` are what it was measured on (e.g. INFERRED FROM the SCOORD it was measured along). */
export function numItem(
  relationship: RelationshipType,
  name: CodedConcept,
  value: number,
  unit: CodedConcept,
  children: ContentItem[] = [],
): ContentItem {
  const item: ContentItem = {
    ...named(relationship, "NUM", name),
    MeasuredValueSequence: [{ MeasurementUnitsCodeSequence: [codeSequenceItem(unit)], NumericValue: formatDS(value) }],
  };
  if (children.length > 0) item.ContentSequence = children;
  return item;
}

export interface ImageReference {
  sopClassUID: string;
  sopInstanceUID: string;
  /** For a reference to one segment of a Segmentation instance (PS3.3 Table 10-3, Referenced Segment Number). */
  segmentNumber?: number;
}

export function imageItem(relationship: RelationshipType, name: CodedConcept | undefined, ref: ImageReference): ContentItem {
  const sop: Record<string, unknown> = {
    ReferencedSOPClassUID: ref.sopClassUID,
    ReferencedSOPInstanceUID: ref.sopInstanceUID,
  };
  if (ref.segmentNumber !== undefined) sop.ReferencedSegmentNumber = ref.segmentNumber;
  return { ...named(relationship, "IMAGE", name), ReferencedSOPSequence: [sop] };
}

/**
 * A SCOORD on one image (PS3.3 C.18.6): column/row pairs in the image's pixel matrix, where (0, 0) is the top left
 * corner of the top left pixel (a pixel's centre is at +0.5); the image it is drawn on is its one child, SELECTED FROM.
 * `name` is left out for a SCOORD that is the source of a measurement (INFERRED FROM), as TID 300 writes it.
 */
export function scoordItem(
  relationship: RelationshipType,
  name: CodedConcept | undefined,
  graphicType: "POINT" | "POLYLINE",
  columnRowPairs: readonly number[],
  image: ImageReference,
): ContentItem {
  if (columnRowPairs.length === 0 || columnRowPairs.length % 2 !== 0 || !columnRowPairs.every(Number.isFinite)) {
    throw new RangeError(`scoordItem: ${columnRowPairs.length} numbers are not column/row pairs`);
  }
  return {
    ...named(relationship, "SCOORD", name),
    GraphicType: graphicType,
    GraphicData: [...columnRowPairs],
    ContentSequence: [imageItem("SELECTED FROM", undefined, image)],
  };
}
