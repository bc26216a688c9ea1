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

export function numItem(relationship: RelationshipType, name: CodedConcept, value: number, unit: CodedConcept): ContentItem {
  return {
    ...named(relationship, "NUM", name),
    MeasuredValueSequence: [{ MeasurementUnitsCodeSequence: [codeSequenceItem(unit)], NumericValue: formatDS(value) }],
  };
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

/** A SCOORD3D POINT in the patient coordinate system of `frameOfReferenceUID` (PS3.3 C.18.9). */
export function scoord3dPointItem(
  relationship: RelationshipType,
  name: CodedConcept,
  point: readonly [number, number, number],
  frameOfReferenceUID: string,
): ContentItem {
  return {
    ...named(relationship, "SCOORD3D", name),
    ReferencedFrameOfReferenceUID: frameOfReferenceUID,
    GraphicType: "POINT",
    GraphicData: [...point],
  };
}
