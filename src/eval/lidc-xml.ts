/**
 * The LIDC-IDRI radiologists' reads (LIDC XML, LidcReadMessage) as reference lesions in patient space.
 *
 * The XML: up to four readingSessions (one per radiologist, unblinded second read), each with
 * - unblindedReadNodule: noduleID and one roi per slice it covers: imageZposition, imageSOP_UID, inclusion
 *   (FALSE marks an exclusion contour inside the nodule) and edgeMap points (xCoord = column, yCoord = row, pixels).
 *   Nodules >= 3 mm are outlined (many points); nodules < 3 mm are a single point (their centre).
 * - nonNodule: a lesion the reader judged not a nodule (>= 3 mm), one locus point.
 *
 * A reader's nodule centroid is the area-weighted mean of its included contours' centroids (a single point counts
 * as itself), mapped to patient coordinates (LPS, mm) through the slice it was drawn on, found by SOP Instance UID
 * or else by the nearest slice position along z. The readers' nodules are then clustered: a read joins the lesion
 * whose centroid is within `clusterMm` (default 10 mm) and that no read of the same reader has joined yet; the
 * reference lesion is the mean of its reads, with the count of readers who marked it (1-4).
 */
import type { CtVolume, Vector3 } from "../dicom/ct-volume.js";
import { voxelToPatient } from "../dicom/geometry.js";

export interface LidcPoint {
  /** Column (xCoord), pixels. */
  x: number;
  /** Row (yCoord), pixels. */
  y: number;
}

export interface LidcRoi {
  imageZposition: number;
  imageSopUid: string;
  /** FALSE: an exclusion contour (a hole) inside the nodule. */
  inclusion: boolean;
  edgeMap: LidcPoint[];
}

export interface LidcNoduleRead {
  noduleId: string;
  rois: LidcRoi[];
}

export interface LidcNonNodule {
  nonNoduleId: string;
  imageZposition: number;
  imageSopUid: string;
  locus: LidcPoint;
}

export interface LidcReadingSession {
  /** servicingRadiologistID (an anonymised number); index is the session's position in the file. */
  readerId: string;
  index: number;
  nodules: LidcNoduleRead[];
  nonNodules: LidcNonNodule[];
}

export interface LidcReadMessage {
  seriesInstanceUid: string;
  studyInstanceUid: string;
  sessions: LidcReadingSession[];
}

// --- a minimal XML reader (elements, attributes skipped, text, entities); LIDC XML needs no more ----------------

interface XmlElement {
  name: string;
  children: XmlElement[];
  text: string;
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, name: string) => {
    if (name.startsWith("#x") || name.startsWith("#X")) return String.fromCodePoint(parseInt(name.slice(2), 16));
    if (name.startsWith("#")) return String.fromCodePoint(parseInt(name.slice(1), 10));
    return ENTITIES[name] ?? whole;
  });
}

function parseXml(text: string): XmlElement {
  const root: XmlElement = { name: "#document", children: [], text: "" };
  const stack: XmlElement[] = [root];
  const tag = /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<!\[CDATA\[([\s\S]*?)\]\]>|<!DOCTYPE[^>]*>|<(\/?)([A-Za-z_][\w.:-]*)([^>]*?)(\/?)>/g;
  let last = 0;
  for (let match = tag.exec(text); match; match = tag.exec(text)) {
    const top = stack[stack.length - 1]!;
    top.text += decodeEntities(text.slice(last, match.index));
    last = tag.lastIndex;
    if (match[1] !== undefined) {
      top.text += match[1];
      continue;
    }
    const name = match[3];
    if (!name) continue; // comment, declaration, doctype
    const local = name.includes(":") ? name.slice(name.indexOf(":") + 1) : name;
    if (match[2] === "/") {
      if (top.name !== local) throw new Error(`LIDC XML is malformed: </${name}> closes <${top.name}>`);
      stack.pop();
      continue;
    }
    const element: XmlElement = { name: local, children: [], text: "" };
    top.children.push(element);
    if (match[5] !== "/") stack.push(element);
  }
  if (stack.length !== 1) throw new Error(`LIDC XML is malformed: <${stack[stack.length - 1]!.name}> is never closed`);
  return root;
}

function child(element: XmlElement, name: string): XmlElement | undefined {
  return element.children.find((c) => c.name === name);
}

function childrenNamed(element: XmlElement, name: string): XmlElement[] {
  return element.children.filter((c) => c.name === name);
}

function textOf(element: XmlElement, name: string): string {
  return child(element, name)?.text.trim() ?? "";
}

function numberOf(element: XmlElement, name: string, where: string): number {
  const raw = textOf(element, name);
  const value = Number(raw);
  if (raw === "" || !Number.isFinite(value)) throw new Error(`LIDC XML: ${where} has no numeric <${name}> (got '${raw}')`);
  return value;
}

function point(element: XmlElement, where: string): LidcPoint {
  return { x: numberOf(element, "xCoord", where), y: numberOf(element, "yCoord", where) };
}

/** Parses a LIDC XML read message (LidcReadMessage). Throws naming what is missing when it is not one. */
export function parseLidcXml(text: string): LidcReadMessage {
  const document = parseXml(text);
  const message = child(document, "LidcReadMessage");
  if (!message) throw new Error("not a LIDC read message: the root element is not <LidcReadMessage>");
  const header = child(message, "ResponseHeader");
  const sessions = childrenNamed(message, "readingSession").map((session, index): LidcReadingSession => {
    const where = `readingSession ${index + 1}`;
    return {
      readerId: textOf(session, "servicingRadiologistID"),
      index,
      nodules: childrenNamed(session, "unblindedReadNodule").map((nodule) => {
        const noduleId = textOf(nodule, "noduleID");
        return {
          noduleId,
          rois: childrenNamed(nodule, "roi").map((roi) => ({
            imageZposition: numberOf(roi, "imageZposition", `${where} nodule ${noduleId}`),
            imageSopUid: textOf(roi, "imageSOP_UID"),
            inclusion: textOf(roi, "inclusion").toUpperCase() !== "FALSE",
            edgeMap: childrenNamed(roi, "edgeMap").map((e) => point(e, `${where} nodule ${noduleId}`)),
          })),
        };
      }),
      nonNodules: childrenNamed(session, "nonNodule").map((non) => {
        const nonNoduleId = textOf(non, "nonNoduleID");
        const locus = child(non, "locus");
        if (!locus) throw new Error(`LIDC XML: ${where} nonNodule ${nonNoduleId} has no <locus>`);
        return {
          nonNoduleId,
          imageZposition: numberOf(non, "imageZposition", `${where} nonNodule ${nonNoduleId}`),
          imageSopUid: textOf(non, "imageSOP_UID"),
          locus: point(locus, `${where} nonNodule ${nonNoduleId}`),
        };
      }),
    };
  });
  return {
    seriesInstanceUid: header ? textOf(header, "SeriesInstanceUid") : "",
    studyInstanceUid: header ? textOf(header, "StudyInstanceUID") : "",
    sessions,
  };
}

// --- reads in patient space ----------------------------------------------------------------------------------------

/** The volume slice a mark was drawn on: by SOP Instance UID, else the slice whose position z is nearest. */
export function sliceOfMark(volume: CtVolume, sopUid: string, z: number): number {
  const bySop = volume.sourceSlices.findIndex((s) => s.sopInstanceUID === sopUid);
  if (bySop >= 0) return bySop;
  let best = 0;
  for (let k = 1; k < volume.slices; k++) {
    if (Math.abs(volume.imagePositionPatient[k]![2] - z) < Math.abs(volume.imagePositionPatient[best]![2] - z)) best = k;
  }
  const off = Math.abs(volume.imagePositionPatient[best]![2] - z);
  if (off > volume.sliceSpacing) {
    throw new Error(`LIDC mark at z=${z} with SOP ${sopUid} matches no slice of this series (nearest is ${off.toFixed(1)} mm away): is it the right series?`);
  }
  return best;
}

/** Centroid (column, row) and area (pixels) of a closed contour; a single point or a degenerate contour: its mean, area 1. */
function contourCentroid(points: LidcPoint[]): { x: number; y: number; area: number } {
  let a = 0;
  let cx = 0;
  let cy = 0;
  for (let i = 0; i < points.length; i++) {
    const p = points[i]!;
    const q = points[(i + 1) % points.length]!;
    const cross = p.x * q.y - q.x * p.y;
    a += cross;
    cx += (p.x + q.x) * cross;
    cy += (p.y + q.y) * cross;
  }
  if (points.length >= 3 && Math.abs(a) > 1e-9) return { x: cx / (3 * a), y: cy / (3 * a), area: Math.abs(a) / 2 };
  const n = Math.max(1, points.length);
  return { x: points.reduce((s, p) => s + p.x, 0) / n, y: points.reduce((s, p) => s + p.y, 0) / n, area: 1 };
}

export interface ReaderNodule {
  reader: number;
  noduleId: string;
  centroidPatientMm: Vector3;
  /** Largest in-plane extent of any contour or the extent along z, whichever is larger, mm; 0 for a point mark. */
  diameterMm: number;
  /** True when the reader outlined it (>= 3 mm); false for a single-point (< 3 mm) mark. */
  outlined: boolean;
}

function distance(a: Vector3, b: Vector3): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
}

/** Every reader's nodule as a centroid and size in patient space. */
export function readerNodules(message: LidcReadMessage, volume: CtVolume): ReaderNodule[] {
  const out: ReaderNodule[] = [];
  for (const session of message.sessions) {
    for (const nodule of session.nodules) {
      const included = nodule.rois.filter((r) => r.inclusion && r.edgeMap.length > 0);
      if (included.length === 0) continue;
      let weight = 0;
      let sk = 0;
      let sr = 0;
      let sc = 0;
      let inPlane = 0;
      const positions: Vector3[] = [];
      for (const roi of included) {
        const k = sliceOfMark(volume, roi.imageSopUid, roi.imageZposition);
        const c = contourCentroid(roi.edgeMap);
        weight += c.area;
        sk += k * c.area;
        sr += c.y * c.area;
        sc += c.x * c.area;
        const points = roi.edgeMap.map((p) => voxelToPatient(volume, k, p.y, p.x));
        positions.push(voxelToPatient(volume, k, c.y, c.x));
        for (let i = 0; i < points.length; i++) {
          for (let j = i + 1; j < points.length; j++) inPlane = Math.max(inPlane, distance(points[i]!, points[j]!));
        }
      }
      const slicesSpanned = new Set(included.map((r) => sliceOfMark(volume, r.imageSopUid, r.imageZposition))).size;
      const outlined = included.some((r) => r.edgeMap.length > 1);
      out.push({
        reader: session.index,
        noduleId: nodule.noduleId,
        centroidPatientMm: voxelToPatient(volume, sk / weight, sr / weight, sc / weight),
        diameterMm: outlined ? Math.max(inPlane, slicesSpanned * volume.sliceSpacing) : 0,
        outlined,
      });
    }
  }
  return out;
}

export interface ReferenceLesion {
  /** 1-based, in order of first appearance. */
  id: number;
  centroidPatientMm: Vector3;
  /** Readers (0-based session indices) who marked it. */
  readers: number[];
  /** Mean of the outlining readers' diameters, mm; 0 when every reader marked it as a point (< 3 mm). */
  diameterMm: number;
  /** At least one reader outlined it (>= 3 mm). */
  outlined: boolean;
  reads: ReaderNodule[];
}

/** Clusters the readers' nodules into reference lesions (see the file comment). */
export function referenceLesions(reads: ReaderNodule[], clusterMm = 10): ReferenceLesion[] {
  const lesions: ReferenceLesion[] = [];
  for (const read of reads) {
    let best: ReferenceLesion | undefined;
    let bestDistance = Infinity;
    for (const lesion of lesions) {
      if (lesion.readers.includes(read.reader)) continue;
      const d = distance(lesion.centroidPatientMm, read.centroidPatientMm);
      if (d <= clusterMm && d < bestDistance) {
        best = lesion;
        bestDistance = d;
      }
    }
    if (!best) {
      best = { id: lesions.length + 1, centroidPatientMm: read.centroidPatientMm, readers: [], diameterMm: 0, outlined: false, reads: [] };
      lesions.push(best);
    }
    best.reads.push(read);
    best.readers.push(read.reader);
    const n = best.reads.length;
    best.centroidPatientMm = [0, 1, 2].map((i) => best.reads.reduce((s, r) => s + r.centroidPatientMm[i]!, 0) / n) as Vector3;
    const outlined = best.reads.filter((r) => r.outlined);
    best.outlined = outlined.length > 0;
    best.diameterMm = outlined.length ? outlined.reduce((s, r) => s + r.diameterMm, 0) / outlined.length : 0;
  }
  for (const lesion of lesions) lesion.readers.sort((a, b) => a - b);
  return lesions;
}

/** Non-nodule marks in patient space (reader, position). */
export function nonNoduleMarks(message: LidcReadMessage, volume: CtVolume): { reader: number; positionPatientMm: Vector3 }[] {
  return message.sessions.flatMap((session) =>
    session.nonNodules.map((non) => ({
      reader: session.index,
      positionPatientMm: voxelToPatient(volume, sliceOfMark(volume, non.imageSopUid, non.imageZposition), non.locus.y, non.locus.x),
    })),
  );
}
