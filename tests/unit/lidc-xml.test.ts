/**
 * LIDC XML reads (src/eval/lidc-xml.ts): the parser on a small hand-written message, then on the real reads of
 * LIDC-IDRI-0002 (071.xml) and LIDC-IDRI-0001 (069.xml) against their own series: every mark lies on a slice of
 * the series (SOP UID and z agree), the counts agree with the raw file, and the readers' nodules cluster into
 * reference lesions with each reader at most once per lesion.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { CtVolume } from "../../src/dicom/ct-volume.js";
import { assembleVolume } from "../../src/dicom/volume.js";
import { type LidcReadMessage, nonNoduleMarks, parseLidcXml, readerNodules, referenceLesions } from "../../src/eval/lidc-xml.js";
import { type CtSeriesName, ctSeriesFolder, readCtSeries, requireCtData } from "../helpers/ct-data.js";

const SMALL = `<?xml version="1.0" encoding="UTF-8"?>
<LidcReadMessage uid="1" xmlns="http://www.nih.gov">
<ResponseHeader><SeriesInstanceUid>2.25.7</SeriesInstanceUid><StudyInstanceUID>2.25.6</StudyInstanceUID></ResponseHeader>
<readingSession>
  <servicingRadiologistID>42</servicingRadiologistID>
  <unblindedReadNodule><noduleID>Nodule 001</noduleID>
    <roi><imageZposition>-100.5 </imageZposition><imageSOP_UID>2.25.8</imageSOP_UID><inclusion>TRUE</inclusion>
      <edgeMap><xCoord>10</xCoord><yCoord>20</yCoord></edgeMap></roi>
  </unblindedReadNodule>
  <unblindedReadNodule><noduleID>a &amp; b</noduleID>
    <characteristics><subtlety>5</subtlety></characteristics>
    <roi><imageZposition>-98</imageZposition><imageSOP_UID>2.25.9</imageSOP_UID><inclusion>TRUE</inclusion>
      <edgeMap><xCoord>0</xCoord><yCoord>0</yCoord></edgeMap><edgeMap><xCoord>4</xCoord><yCoord>0</yCoord></edgeMap>
      <edgeMap><xCoord>4</xCoord><yCoord>2</yCoord></edgeMap><edgeMap><xCoord>0</xCoord><yCoord>2</yCoord></edgeMap></roi>
    <roi><imageZposition>-98</imageZposition><imageSOP_UID>2.25.9</imageSOP_UID><inclusion>FALSE</inclusion>
      <edgeMap><xCoord>1</xCoord><yCoord>1</yCoord></edgeMap></roi>
  </unblindedReadNodule>
  <nonNodule><nonNoduleID>n1</nonNoduleID><imageZposition>-90</imageZposition><imageSOP_UID>2.25.10</imageSOP_UID>
    <locus><xCoord>300</xCoord><yCoord>200</yCoord></locus></nonNodule>
</readingSession>
<readingSession><servicingRadiologistID>43</servicingRadiologistID></readingSession>
</LidcReadMessage>`;

describe("LIDC XML parser", () => {
  it("reads sessions, nodules (points and contours, inclusion), non-nodules and the series UID", () => {
    const message = parseLidcXml(SMALL);
    expect(message.seriesInstanceUid).toBe("2.25.7");
    expect(message.studyInstanceUid).toBe("2.25.6");
    expect(message.sessions.map((s) => [s.readerId, s.index, s.nodules.length, s.nonNodules.length])).toEqual([
      ["42", 0, 2, 1],
      ["43", 1, 0, 0],
    ]);
    const [point, outlined] = message.sessions[0]!.nodules;
    expect(point).toEqual({
      noduleId: "Nodule 001",
      rois: [{ imageZposition: -100.5, imageSopUid: "2.25.8", inclusion: true, edgeMap: [{ x: 10, y: 20 }] }],
    });
    expect(outlined!.noduleId).toBe("a & b");
    expect(outlined!.rois.map((r) => [r.inclusion, r.edgeMap.length])).toEqual([[true, 4], [false, 1]]);
    expect(message.sessions[0]!.nonNodules[0]).toEqual({ nonNoduleId: "n1", imageZposition: -90, imageSopUid: "2.25.10", locus: { x: 300, y: 200 } });
  });

  it("refuses what is not a LIDC read message, and malformed XML, saying why", () => {
    expect(() => parseLidcXml("<other/>")).toThrow(/not a LIDC read message/);
    expect(() => parseLidcXml("<LidcReadMessage><readingSession></LidcReadMessage>")).toThrow(/closes <readingSession>/);
    expect(() => parseLidcXml(SMALL.replace("<xCoord>300</xCoord>", "<xCoord>x</xCoord>"))).toThrow(/numeric <xCoord>/);
  });
});

const haveData = requireCtData("lidc-idri-0002-ncct", "lidc-idri-0001-cect");

const CASES: { series: CtSeriesName; xml: string }[] = [
  { series: "lidc-idri-0002-ncct", xml: "071.xml" },
  { series: "lidc-idri-0001-cect", xml: "069.xml" },
];

describe.skipIf(!haveData).each(CASES)("LIDC reads of $series ($xml)", ({ series, xml }) => {
  let volume: CtVolume;
  let raw: string;
  let message: LidcReadMessage;

  beforeAll(async () => {
    volume = await assembleVolume(readCtSeries(series));
    raw = readFileSync(path.join(ctSeriesFolder(series), xml), "utf8");
    message = parseLidcXml(raw);
  });

  it("belongs to this series and has four reading sessions with every nodule and non-nodule of the file", () => {
    expect(message.seriesInstanceUid).toBe(volume.seriesInstanceUID);
    expect(message.sessions).toHaveLength(4);
    const count = (tag: string) => (raw.match(new RegExp(`<${tag}>`, "g")) ?? []).length;
    expect(message.sessions.reduce((n, s) => n + s.nodules.length, 0)).toBe(count("unblindedReadNodule"));
    expect(message.sessions.reduce((n, s) => n + s.nonNodules.length, 0)).toBe(count("nonNodule"));
    expect(message.sessions.reduce((n, s) => n + s.nodules.reduce((m, d) => m + d.rois.length, 0), 0)).toBe(count("roi"));
    expect(message.sessions.flatMap((s) => s.nodules.flatMap((d) => d.rois)).reduce((n, r) => n + r.edgeMap.length, 0)).toBe(count("edgeMap"));
  });

  it("puts every mark on a slice of the series: its SOP UID is there and its z is that slice's position", () => {
    const bySop = new Map(volume.sourceSlices.map((s, k) => [s.sopInstanceUID, k]));
    const marks = message.sessions.flatMap((s) => [
      ...s.nodules.flatMap((d) => d.rois.map((r) => ({ sop: r.imageSopUid, z: r.imageZposition, points: r.edgeMap }))),
      ...s.nonNodules.map((n) => ({ sop: n.imageSopUid, z: n.imageZposition, points: [n.locus] })),
    ]);
    expect(marks.length).toBeGreaterThan(10);
    for (const mark of marks) {
      const k = bySop.get(mark.sop);
      expect(k, `SOP ${mark.sop}`).toBeDefined();
      expect(volume.imagePositionPatient[k!]![2]).toBeCloseTo(mark.z, 2);
      for (const p of mark.points) {
        expect(p.x).toBeGreaterThanOrEqual(0);
        expect(p.x).toBeLessThan(volume.columns);
        expect(p.y).toBeGreaterThanOrEqual(0);
        expect(p.y).toBeLessThan(volume.rows);
      }
    }
    expect(nonNoduleMarks(message, volume)).toHaveLength(message.sessions.reduce((n, s) => n + s.nonNodules.length, 0));
  });

  it("clusters the readers' nodules into lesions, each reader at most once, reads within 10 mm of their lesion", () => {
    const reads = readerNodules(message, volume);
    expect(reads.length).toBe(message.sessions.reduce((n, s) => n + s.nodules.length, 0));
    const lesions = referenceLesions(reads);
    expect(lesions.reduce((n, l) => n + l.reads.length, 0)).toBe(reads.length);
    for (const lesion of lesions) {
      expect(new Set(lesion.readers).size).toBe(lesion.readers.length);
      for (const read of lesion.reads) {
        const d = Math.hypot(...read.centroidPatientMm.map((v, i) => v - lesion.centroidPatientMm[i]!));
        expect(d).toBeLessThanOrEqual(10);
      }
      // inside the scanned volume along z
      const zs = volume.imagePositionPatient.map((p) => p[2]);
      expect(lesion.centroidPatientMm[2]).toBeGreaterThanOrEqual(Math.min(...zs));
      expect(lesion.centroidPatientMm[2]).toBeLessThanOrEqual(Math.max(...zs));
    }
    // Each series has an outlined (>= 3 mm) nodule that at least two radiologists marked, over 10 mm across.
    const large = lesions.filter((l) => l.outlined && l.readers.length >= 2 && l.diameterMm > 10);
    expect(large.length).toBeGreaterThanOrEqual(1);
    // and lesions that all four readers marked
    expect(lesions.some((l) => l.readers.length === 4)).toBe(true);
  });
});
