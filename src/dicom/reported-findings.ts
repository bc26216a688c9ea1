/**
 * The findings a stored detection output tells of, read back from its objects: the TID 1500 report's TID 1411 groups
 * (who, what, where, volume, certainty, which segment) and TID 1410 groups (the long axis), and from the SEG each
 * segment's voxels, whose mean patient position is the finding's centroid. A job that finds its output already whole
 * in the PACS (an earlier attempt stored it, then stopped before it could end) tells its receivers what the objects
 * say, not nothing. Reads only what our writers write (sr/, seg.ts); anything else is refused, saying what is missing.
 */
import { data } from "dcmjs";
import type { CodedConcept, Finding } from "./finding.js";
import type { Vector3 } from "./ct-volume.js";
import {
  CERTAINTY_OF_FINDING, FINDING, FINDING_SITE, IMAGING_MEASUREMENTS, LONG_AXIS, REFERENCED_SEGMENT, TEMPLATE,
  TRACKING_IDENTIFIER, TRACKING_UNIQUE_IDENTIFIER, VOLUME,
} from "./sr/codes.js";
import { items } from "./sr/content-tree.js";
import { OperationalError } from "../stage-error.js";

/** A finding as its report and segmentation tell it: everything but the voxel mask. */
export type ReportedFinding = Omit<Finding, "mask">;

/** A stored report or segmentation that does not say what our writers write: reading it again will not help. */
export class ReportReadError extends OperationalError {
  override readonly name = "ReportReadError";
  constructor(message: string) {
    super(message, false);
  }
}

type Item = Record<string, unknown>;

function naturalized(bytes: Uint8Array, what: string): Item {
  try {
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    return data.DicomMetaDictionary.naturalizeDataset(data.DicomMessage.readFile(buffer).dict);
  } catch (error) {
    throw new ReportReadError(`the stored ${what} is not a readable DICOM file: ${error instanceof Error ? error.message : String(error)}`);
  }
}


const isConcept = (item: Item, concept: CodedConcept): boolean => {
  const name = items(item.ConceptNameCodeSequence)[0];
  return name?.CodeValue === concept.value && name?.CodingSchemeDesignator === concept.scheme;
};

const templateOf = (item: Item): unknown => items(item.ContentTemplateSequence)[0]?.TemplateIdentifier;

function child(group: Item, concept: CodedConcept, where: string): Item {
  const found = items(group.ContentSequence).find((c) => isConcept(c, concept));
  if (!found) throw new ReportReadError(`the stored report's ${where} has no "${concept.meaning}" item`);
  return found;
}

function codedValue(item: Item, where: string): CodedConcept {
  const code = items(item.ConceptCodeSequence)[0];
  if (!code || typeof code.CodeValue !== "string") throw new ReportReadError(`the stored report's ${where} has no coded value`);
  return { value: code.CodeValue, scheme: String(code.CodingSchemeDesignator), meaning: String(code.CodeMeaning) };
}

function numericValue(item: Item, where: string): number {
  const value = Number(items(item.MeasuredValueSequence)[0]?.NumericValue);
  if (!Number.isFinite(value)) throw new ReportReadError(`the stored report's ${where} has no numeric value`);
  return value;
}

/** The report's measurement groups (the Imaging Measurements container's children). */
function measurementGroups(report: Item): Item[] {
  const measurements = items(report.ContentSequence).find((c) => isConcept(c, IMAGING_MEASUREMENTS));
  if (!measurements) throw new ReportReadError(`the stored report has no "${IMAGING_MEASUREMENTS.meaning}" container`);
  return items(measurements.ContentSequence);
}

interface ReportedGroup {
  finding: Omit<ReportedFinding, "centroidPatientMm" | "longestDiameterMm">;
  segmentNumber: number;
}

function volumetricGroup(group: Item, index: number): ReportedGroup {
  const where = `measurement group ${index + 1} (TID ${TEMPLATE.volumetricRoi})`;
  const segment = items(child(group, REFERENCED_SEGMENT, where).ReferencedSOPSequence)[0]?.ReferencedSegmentNumber;
  return {
    finding: {
      trackingId: String(child(group, TRACKING_IDENTIFIER, where).TextValue),
      trackingUid: String(child(group, TRACKING_UNIQUE_IDENTIFIER, where).UID),
      findingCode: codedValue(child(group, FINDING, where), where),
      findingSiteCode: codedValue(child(group, FINDING_SITE, where), where),
      volumeMm3: numericValue(child(group, VOLUME, where), where),
      probability: numericValue(child(group, CERTAINTY_OF_FINDING, where), where) / 100,
    },
    segmentNumber: Number(segment),
  };
}

/** Per segment number, the mean patient position (LPS, mm) of its voxels in the SEG. */
function segmentCentroids(segmentation: Uint8Array): Map<number, Vector3> {
  const seg = naturalized(segmentation, "segmentation");
  const rows = Number(seg.Rows);
  const columns = Number(seg.Columns);
  const shared = items(seg.SharedFunctionalGroupsSequence)[0];
  const iop = (items(shared?.PlaneOrientationSequence)[0]?.ImageOrientationPatient as unknown[] | undefined)?.map(Number);
  const spacing = (items(shared?.PixelMeasuresSequence)[0]?.PixelSpacing as unknown[] | undefined)?.map(Number);
  const pixelData: unknown = Array.isArray(seg.PixelData) ? seg.PixelData[0] : seg.PixelData;
  const bits = pixelData instanceof ArrayBuffer ? new Uint8Array(pixelData)
    : ArrayBuffer.isView(pixelData) ? new Uint8Array(pixelData.buffer, pixelData.byteOffset, pixelData.byteLength) : undefined;
  if (!(rows > 0 && columns > 0) || iop?.length !== 6 || spacing?.length !== 2 || !bits) {
    throw new ReportReadError("the stored segmentation lacks its matrix, orientation, pixel spacing or pixel data");
  }
  const sums = new Map<number, { sum: Float64Array; n: number }>();
  items(seg.PerFrameFunctionalGroupsSequence).forEach((frame, f) => {
    const segment = Number(items(frame.SegmentIdentificationSequence)[0]?.ReferencedSegmentNumber);
    const ipp = (items(frame.PlanePositionSequence)[0]?.ImagePositionPatient as unknown[] | undefined)?.map(Number);
    if (ipp?.length !== 3) throw new ReportReadError(`the stored segmentation's frame ${f + 1} has no Image Position (Patient)`);
    const into = sums.get(segment) ?? { sum: new Float64Array(3), n: 0 };
    const base = f * rows * columns;
    for (let p = 0; p < rows * columns; p += 1) {
      const bit = base + p;
      if ((bit & 7) === 0 && bits[bit >> 3] === 0) { p += 7; continue; } // a byte of eight unset pixels
      if (((bits[bit >> 3] ?? 0) & (1 << (bit & 7))) === 0) continue;
      const row = Math.floor(p / columns);
      const column = p % columns;
      for (let i = 0; i < 3; i += 1) into.sum[i]! += ipp[i]! + column * spacing[1]! * iop[i]! + row * spacing[0]! * iop[3 + i]!;
      into.n += 1;
    }
    sums.set(segment, into);
  });
  return new Map([...sums].filter(([, s]) => s.n > 0).map(([segment, s]) => [segment, [...s.sum].map((v) => v / s.n) as Vector3]));
}

/**
 * The findings of a stored report, in its order, with their centroids from the stored segmentation, which
 * `loadSegmentation` fetches only when the report has findings (a report of none has no SEG beside it).
 */
export async function reportedFindings(report: Uint8Array, loadSegmentation: () => Promise<Uint8Array | undefined>): Promise<ReportedFinding[]> {
  const groups = measurementGroups(naturalized(report, "report"));
  const volumetric = groups.filter((g) => templateOf(g) === TEMPLATE.volumetricRoi).map(volumetricGroup);
  if (volumetric.length === 0) return [];
  const longAxes = new Map(groups.filter((g) => templateOf(g) === TEMPLATE.planarRoi).map((g, i) => {
    const where = `long-axis group ${i + 1} (TID ${TEMPLATE.planarRoi})`;
    return [String(child(g, TRACKING_UNIQUE_IDENTIFIER, where).UID), numericValue(child(g, LONG_AXIS, where), where)];
  }));
  const segmentation = await loadSegmentation();
  if (!segmentation) throw new ReportReadError(`the stored report has ${volumetric.length} finding(s) but its segmentation is not stored`);
  const centroids = segmentCentroids(segmentation);
  return volumetric.map(({ finding, segmentNumber }) => {
    const centroid = centroids.get(segmentNumber);
    const longestDiameterMm = longAxes.get(finding.trackingUid);
    if (!centroid) throw new ReportReadError(`${finding.trackingId}: segment ${segmentNumber} has no voxels in the stored segmentation`);
    if (longestDiameterMm === undefined) throw new ReportReadError(`${finding.trackingId}: the stored report has no long axis for it`);
    return { ...finding, longestDiameterMm, centroidPatientMm: centroid };
  });
}
