/**
 * A plain view of an SR document's content tree, for golden-file tests and for reading a report in a log:
 * each node is {relationship, type, concept, value, template, children} with codes written as "(value, scheme, meaning)".
 * Works on a naturalized dataset as dcmjs reads one back (single-item sequences as arrays or as objects).
 */
export interface ContentTreeNode {
  relationship?: string;
  type: string;
  concept?: string;
  value?: unknown;
  template?: string;
  children?: ContentTreeNode[];
}

type Item = Record<string, unknown>;

/** A sequence's items, as dcmjs reads them back: a one-item sequence may come as an array or as the item itself. */
export function items(sequence: unknown): Item[] {
  if (sequence === undefined || sequence === null) return [];
  return (Array.isArray(sequence) ? sequence : [sequence]) as Item[];
}

function first(sequence: unknown): Item | undefined {
  return items(sequence)[0];
}

function code(sequence: unknown): string | undefined {
  const c = first(sequence);
  if (!c) return undefined;
  return `(${String(c.CodeValue)}, ${String(c.CodingSchemeDesignator)}, "${String(c.CodeMeaning)}")`;
}

function numbers(value: unknown): number[] {
  return items(value).map((v) => Number(v));
}

function valueOf(item: Item): unknown {
  switch (item.ValueType) {
    case "CODE":
      return code(item.ConceptCodeSequence);
    case "TEXT":
      return item.TextValue;
    case "UIDREF":
      return item.UID;
    case "NUM": {
      const measured = first(item.MeasuredValueSequence);
      if (!measured) return undefined;
      const unit = first(measured.MeasurementUnitsCodeSequence);
      return `${String(measured.NumericValue)} ${String(unit?.CodeValue)}`;
    }
    case "IMAGE": {
      const ref = first(item.ReferencedSOPSequence);
      if (!ref) return undefined;
      const out: Record<string, unknown> = { sopClassUID: ref.ReferencedSOPClassUID, sopInstanceUID: ref.ReferencedSOPInstanceUID };
      if (ref.ReferencedSegmentNumber !== undefined) out.segmentNumber = Number(items(ref.ReferencedSegmentNumber)[0]);
      return out;
    }
    case "SCOORD3D":
      return {
        graphicType: item.GraphicType,
        // Float32 on the wire: round to 0.001 mm so the dump reads as written.
        graphicData: numbers(item.GraphicData).map((v) => Math.round(v * 1000) / 1000),
        frameOfReferenceUID: item.ReferencedFrameOfReferenceUID,
      };
    case "SCOORD":
      return { graphicType: item.GraphicType, graphicData: numbers(item.GraphicData) };
    default:
      return undefined;
  }
}

function node(item: Item): ContentTreeNode {
  const out: ContentTreeNode = item.RelationshipType !== undefined ? { relationship: String(item.RelationshipType), type: "" } : { type: "" };
  out.type = String(item.ValueType);
  const concept = code(item.ConceptNameCodeSequence);
  if (concept) out.concept = concept;
  const value = valueOf(item);
  if (value !== undefined) out.value = value;
  const template = first(item.ContentTemplateSequence);
  if (template) out.template = `${String(template.MappingResource)} ${String(template.TemplateIdentifier)}`;
  const children = items(item.ContentSequence).map(node);
  if (children.length > 0) out.children = children;
  return out;
}

/** The content tree of an SR dataset, from its root container down. */
export function contentTree(dataset: Item): ContentTreeNode {
  return node(dataset);
}
