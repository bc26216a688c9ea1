/**
 * TID 1500 Measurement Report writer: write, then read back with every reader we can run here — dciodvfy (IOD),
 * dsrdump (DCMTK's SR parser), a golden dump of the content tree, and the Cornerstone3D SR adapter OHIF hydrates
 * measurements with — plus the rules OHIF's own SR display code relies on.
 */
import { spawnSync } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import type { CtVolume } from "../../src/dicom/ct-volume.js";
import type { Finding } from "../../src/dicom/finding.js";
import { contentTree } from "../../src/dicom/sr/content-tree.js";
import { SopClass } from "../../src/dicom/part10.js";
import { type MeasurementReportInput, writeMeasurementReport } from "../../src/dicom/sr/measurement-report.js";
import {
  ALGORITHM,
  dciodvfy,
  readNaturalized,
  SEG_IDENTITY,
  SR_IDENTITY,
  syntheticVolume,
  tempFile,
  twoFindings,
} from "../helpers/sr-fixtures.js";
import { requireTools } from "../helpers/system-tools.js";

const haveDciodvfy = requireTools("dciodvfy");
const haveDsrdump = requireTools("dsrdump");

/**
 * Golden files, as vitest keeps file snapshots: a missing one fails in CI (and is written elsewhere, to be looked at
 * and committed); `vitest -u` rewrites them after a deliberate change.
 */
const golden = (name: string, tree: unknown) => expect(`${JSON.stringify(tree, null, 2)}\n`).toMatchFileSnapshot(`../golden/${name}`);

let volume: CtVolume;
let findings: Finding[];
let input: MeasurementReportInput;
let withFindings: Uint8Array;
let noFindings: Uint8Array;

beforeAll(() => {
  volume = syntheticVolume();
  findings = twoFindings(volume);
  input = { volume, findings, algorithm: ALGORITHM, identity: SR_IDENTITY, segmentation: SEG_IDENTITY };
  withFindings = writeMeasurementReport(input);
  noFindings = writeMeasurementReport({ ...input, findings: [], segmentation: undefined });
});

describe("TID 1500 measurement report", () => {
  it("is a Comprehensive 3D SR in the source study, marked AI-generated, with its evidence listed", () => {
    const ds = readNaturalized(withFindings);
    expect(ds.SOPClassUID).toBe(SopClass.Comprehensive3dSr);
    expect(ds.Modality).toBe("SR");
    expect(ds.StudyInstanceUID).toBe(volume.studyInstanceUID);
    expect(ds.SeriesInstanceUID).toBe(SR_IDENTITY.seriesInstanceUID);
    expect(ds.PatientID).toBe("PHANTOM-001");
    expect(ds.SeriesDescription).toMatch(/NOT FOR DIAGNOSTIC USE/);
    expect(ds.Manufacturer).toBe("ct-enhance");
    expect(ds.CompletionFlag).toBe("COMPLETE");
    expect(ds.VerificationFlag).toBe("UNVERIFIED");
    expect(ds.ContentTemplateSequence[0]).toMatchObject({ MappingResource: "DCMR", TemplateIdentifier: "1500" });
    const evidence = ds.CurrentRequestedProcedureEvidenceSequence[0];
    expect(evidence.StudyInstanceUID).toBe(volume.studyInstanceUID);
    const [ct, seg] = evidence.ReferencedSeriesSequence;
    expect(ct.SeriesInstanceUID).toBe(volume.seriesInstanceUID);
    expect(ct.ReferencedSOPSequence.map((r: any) => r.ReferencedSOPInstanceUID)).toEqual(volume.sourceSlices.map((s) => s.sopInstanceUID));
    expect(seg.ReferencedSOPSequence[0].ReferencedSOPInstanceUID).toBe(SEG_IDENTITY.sopInstanceUID);
  });

  it("writes the same bytes for the same input", () => {
    expect(Buffer.from(writeMeasurementReport(input)).equals(Buffer.from(withFindings))).toBe(true);
  });

  it.skipIf(!haveDciodvfy)("passes dciodvfy with no errors, with and without findings", () => {
    for (const [name, bytes] of [["sr.dcm", withFindings], ["sr-no-findings.dcm", noFindings]] as const) {
      const result = dciodvfy(tempFile(name, bytes));
      expect(result.output).toMatch(/Comprehensive3DSR/);
      expect(result.errors, result.output).toEqual([]);
      expect(result.warnings, result.output).toEqual([]);
    }
  });

  it.skipIf(!haveDsrdump)("parses with dsrdump (DCMTK) and prints the tree", () => {
    const run = spawnSync("dsrdump", ["+Pt", tempFile("sr.dcm", withFindings)], { encoding: "utf8" });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr.split("\n").filter((l) => l.startsWith("E:"))).toEqual([]);
    expect(run.stdout).toMatch(/Comprehensive 3D SR Document/);
    expect(run.stdout).toMatch(/<CONTAINER:\(,,"Imaging Measurement Report"\)=SEPARATE> {2}# TID 1500 \(DCMR\)/);
    expect(run.stdout).toMatch(/<contains IMAGE:\(,,"Referenced Segment"\)=\(SG image,,1\)>/);
    expect(run.stdout).toMatch(/<contains SCOORD3D:\(,,"Image Region"\)=\(POINT,/);
    expect(run.stdout).toMatch(/<contains NUM:\(,,"Long Axis"\)="6.3" \(mm,UCUM,"millimeter"\)>/);
    const none = spawnSync("dsrdump", [tempFile("sr0.dcm", noFindings)], { encoding: "utf8" });
    expect(none.status, none.stderr).toBe(0);
    expect(none.stdout).toMatch(/<contains CODE:\(,,"Nodule"\)=\(2667000,SCT,"Absent"\)>/);
  });

  it("reads back to the golden content tree", async () => {
    await golden("sr-tree.json", contentTree(readNaturalized(withFindings)));
    await golden("sr-tree-no-findings.json", contentTree(readNaturalized(noFindings)));
  });

  it("gives every finding back, with its coordinates, through the Cornerstone3D SR adapter OHIF uses", async () => {
    const MeasurementReport = (await import("@cornerstonejs/adapters/cornerstone3D/MeasurementReport")).default;
    await import("@cornerstonejs/adapters/cornerstone3D/Probe");
    const metadata = { get: () => undefined };
    // The adapter warns about each group it has no tool for (the TID 1411 groups, which carry no point): quiet it.
    const { utilities } = await import("@cornerstonejs/core");
    const log = utilities.logger.adaptersLog.getLogger("Cornerstone3D.MeasurementReport");
    const level = log.getLevel!();
    log.setLevel("error");
    let state: Record<string, any[]>;
    let empty: Record<string, any[]>;
    try {
      // The adapter's typings ask for a fourth argument (hooks) that it does not need.
      const generate = MeasurementReport.generateToolState.bind(MeasurementReport) as (...args: unknown[]) => Record<string, any[]>;
      state = generate(readNaturalized(withFindings), {}, metadata);
      empty = generate(readNaturalized(noFindings), {}, metadata);
    } finally {
      log.setLevel(level);
    }
    expect(Object.keys(state)).toEqual(["Probe"]);
    const probes = state.Probe!;
    expect(probes).toHaveLength(findings.length);
    findings.forEach((finding, i) => {
      const probe = probes[i];
      expect(probe.TrackingUniqueIdentifier).toBe(finding.trackingUid);
      expect(probe.description).toBe("Nodule");
      expect(probe.annotation.metadata.FrameOfReferenceUID).toBe(volume.frameOfReferenceUID);
      const [point] = probe.annotation.data.handles.points;
      point.forEach((v: number, axis: number) => expect(v).toBeCloseTo(finding.centroidPatientMm[axis]!, 3));
    });
    expect(empty).toEqual({});
  });

  it("has the shape OHIF's SR display code reads (Image Library Group, tracking UIDs, one point per finding)", () => {
    // Mirrors extensions/cornerstone-dicom-sr/src/getSopClassHandlerModule.ts: _getReferencedImagesList and
    // _getMeasurements (groups merged by Tracking Unique Identifier, first UIDREF = tracking UID, top-level SCOORD3D).
    const ds = readNaturalized(withFindings);
    const byCode = (items: any[], value: string) => items.filter((i) => i.ConceptNameCodeSequence[0].CodeValue === value);
    const library = byCode(ds.ContentSequence, "111028")[0];
    const libraryGroup = byCode(library.ContentSequence, "126200")[0];
    expect(libraryGroup.ContentSequence.map((i: any) => i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)).toEqual(
      volume.sourceSlices.map((s) => s.sopInstanceUID),
    );
    const groups = byCode(byCode(ds.ContentSequence, "126010")[0].ContentSequence, "125007");
    const merged = new Map<string, any[]>();
    for (const group of groups) {
      const uid = byCode(group.ContentSequence, "112040")[0].UID;
      merged.set(uid, [...(merged.get(uid) ?? []), ...group.ContentSequence]);
    }
    expect([...merged.keys()]).toEqual(findings.map((f) => f.trackingUid));
    findings.forEach((finding) => {
      const items = merged.get(finding.trackingUid)!;
      expect(items.find((i) => i.ValueType === "UIDREF").UID).toBe(finding.trackingUid);
      expect(byCode(items, "112039")[0].TextValue).toBe(finding.trackingId);
      const points = items.filter((i) => i.ValueType === "SCOORD3D");
      expect(points).toHaveLength(1);
      expect(points[0].ReferencedFrameOfReferenceUID).toBe(volume.frameOfReferenceUID);
      expect(items.filter((i) => i.ValueType === "NUM").map((i) => i.ConceptNameCodeSequence[0].CodeMeaning)).toEqual([
        "Long Axis",
        "Volume",
        "Certainty of Finding",
      ]);
    });
  });

  it("names the bad argument", () => {
    expect(() => writeMeasurementReport({ ...input, segmentation: undefined })).toThrow(/^segmentation: /);
    expect(() => writeMeasurementReport({ ...input, findings: [{ ...findings[0]!, probability: 1.5 }] })).toThrow(
      /findings\[0\]\.probability/,
    );
    expect(() =>
      writeMeasurementReport({ ...input, findings: [{ ...findings[0]!, mask: [{ slice: 8, pixels: [0] }] }] }),
    ).toThrow(/findings\[0\]\.mask\[0\]\.slice: 8 is outside the volume's 8 slices/);
    expect(() => writeMeasurementReport({ ...input, findings: [findings[0]!, { ...findings[1]!, trackingUid: findings[0]!.trackingUid }] })).toThrow(
      /findings\[1\]\.trackingUid/,
    );
    expect(() =>
      writeMeasurementReport({ ...input, identity: { ...SR_IDENTITY, seriesInstanceUID: volume.seriesInstanceUID } }),
    ).toThrow(/identity\.seriesInstanceUID/);
    expect(() => writeMeasurementReport({ ...input, algorithm: { ...ALGORITHM, modelVersion: "" } })).toThrow(/algorithm\.modelVersion/);
  });
});
