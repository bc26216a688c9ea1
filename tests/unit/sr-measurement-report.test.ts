/**
 * TID 1500 Measurement Report writer: write, then read back with every reader we can run here — dciodvfy (IOD),
 * dsrdump (DCMTK's SR parser), a golden dump of the content tree, and the Cornerstone3D SR adapter OHIF hydrates
 * measurements with — plus the rules OHIF's own SR display code relies on.
 */
import { spawnSync } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import type { CtVolume } from "../../src/dicom/ct-volume.js";
import type { Finding } from "../../src/dicom/finding.js";
import { longAxis } from "../../src/dicom/long-axis.js";
import { contentTree } from "../../src/dicom/sr/content-tree.js";
import { formatDS } from "../../src/dicom/value-formats.js";
import { SopClass } from "../../src/dicom/part10.js";
import { type MeasurementReportInput, writeMeasurementReport } from "../../src/dicom/sr/measurement-report.js";
import {
  ALGORITHM,
  dciodvfy,
  patientPosition,
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
    const run = spawnSync("dsrdump", ["+Pt", "+Pl", tempFile("sr.dcm", withFindings)], { encoding: "utf8" });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr.split("\n").filter((l) => l.startsWith("E:"))).toEqual([]);
    expect(run.stdout).toMatch(/Comprehensive 3D SR Document/);
    expect(run.stdout).toMatch(/<CONTAINER:\(,,"Imaging Measurement Report"\)=SEPARATE> {2}# TID 1500 \(DCMR\)/);
    expect(run.stdout).toMatch(/<contains IMAGE:\(,,"Referenced Segment"\)=\(SG image,,1\)>/);
    // Per finding, its long axis: the line on the source image (TID 1410), and the length measured along it.
    const axis = longAxis(findings[0]!.mask, volume);
    expect(run.stdout).toContain(`<has obs context TEXT:(,,"Tracking Identifier")="Cornerstone3DTools@^0.1.0:Length:Nodule 1">`);
    expect(run.stdout).toContain(`<contains TEXT:(,,"Comment")="Nodule 1">`);
    expect(run.stdout).toMatch(/<contains SCOORD:\(,,"Image Region"\)=\(POLYLINE,/);
    expect(run.stdout).toContain(`<contains NUM:(,,"Long Axis")="${formatDS(axis.lengthMm)}" (mm,UCUM,"millimeter")>`);
    expect(run.stdout).toMatch(/<contains NUM:\(,,"Long Axis"\)="[0-9.]+" \(mm,UCUM,"millimeter"\)>\n +<inferred from SCOORD:=\(POLYLINE,/);
    expect(run.stdout).toMatch(/<inferred from SCOORD:=\(POLYLINE,[^\n]+\n +<selected from IMAGE:=\(CT image,/);
    expect(run.stdout).not.toContain("SCOORD3D");
    const none = spawnSync("dsrdump", [tempFile("sr0.dcm", noFindings)], { encoding: "utf8" });
    expect(none.status, none.stderr).toBe(0);
    expect(none.stdout).toMatch(/<contains CODE:\(,,"Nodule"\)=\(2667000,SCT,"Absent"\)>/);
  });

  it("reads back to the golden content tree", async () => {
    await golden("sr-tree.json", contentTree(readNaturalized(withFindings)));
    await golden("sr-tree-no-findings.json", contentTree(readNaturalized(noFindings)));
  });

  it("gives every finding back as a Length on its source image, through the Cornerstone3D SR adapter OHIF uses", async () => {
    const MeasurementReport = (await import("@cornerstonejs/adapters/cornerstone3D/MeasurementReport")).default;
    await import("@cornerstonejs/adapters/cornerstone3D/Probe");
    await import("@cornerstonejs/adapters/cornerstone3D/Length");
    // OHIF gives the adapter an imageId per referenced instance and a metadata provider with each image's plane;
    // the adapter turns the SCOORD's column/row pairs into patient coordinates with them.
    const { metaData, utilities } = await import("@cornerstonejs/core");
    const imageIds: Record<string, string> = {};
    const planes = new Map<string, Record<string, unknown>>();
    volume.sourceSlices.forEach((source, k) => {
      const imageId = `test:${source.sopInstanceUID}`;
      imageIds[`${source.sopInstanceUID}:1`] = imageId;
      planes.set(imageId, {
        frameOfReferenceUID: volume.frameOfReferenceUID,
        imagePositionPatient: volume.imagePositionPatient[k],
        rowCosines: volume.imageOrientationPatient.slice(0, 3),
        columnCosines: volume.imageOrientationPatient.slice(3, 6),
        rowPixelSpacing: volume.pixelSpacing[0],
        columnPixelSpacing: volume.pixelSpacing[1],
      });
    });
    const provider = (type: string, imageId: unknown) => (type === "imagePlaneModule" ? planes.get(String(imageId)) : undefined);
    metaData.addProvider(provider, 10_000);
    // The adapter warns about each group it has no tool for (the TID 1411 groups, which carry no line): quiet it.
    const log = utilities.logger.adaptersLog.getLogger("Cornerstone3D.MeasurementReport");
    const level = log.getLevel!();
    log.setLevel("error");
    let state: Record<string, any[]>;
    let empty: Record<string, any[]>;
    try {
      // The adapter's typings ask for a fourth argument (hooks) that it does not need.
      const generate = MeasurementReport.generateToolState.bind(MeasurementReport) as (...args: unknown[]) => Record<string, any[]>;
      state = generate(readNaturalized(withFindings), imageIds, metaData);
      empty = generate(readNaturalized(noFindings), imageIds, metaData);
    } finally {
      log.setLevel(level);
      metaData.removeProvider(provider);
    }
    expect(Object.keys(state)).toEqual(["Length"]);
    const lengths = state.Length!;
    expect(lengths).toHaveLength(findings.length);
    findings.forEach((finding, i) => {
      const length = lengths[i];
      const axis = longAxis(finding.mask, volume);
      const imageId = `test:${volume.sourceSlices[axis.slice]!.sopInstanceUID}`;
      expect(length.TrackingUniqueIdentifier).toBe(finding.trackingUid);
      expect(length.description).toBe("Nodule");
      expect(length.annotation.data.label).toBe(finding.trackingId); // the name OHIF's panel gives the line
      expect(length.annotation.metadata.referencedImageId).toBe(imageId);
      expect(length.annotation.metadata.FrameOfReferenceUID).toBe(volume.frameOfReferenceUID);
      // Its ends are the axis' pixel centres in patient coordinates, and the length OHIF shows is the NUM's.
      const ends = length.annotation.data.handles.points as number[][];
      expect(ends).toHaveLength(2);
      axis.ends.forEach((end, e) => {
        const expected = patientPosition(volume, axis.slice, end.row * volume.columns + end.column);
        ends[e]!.forEach((v, a) => expect(v).toBeCloseTo(expected[a]!, 4));
      });
      expect(Math.hypot(...ends[0]!.map((v, a) => v - ends[1]![a]!))).toBeCloseTo(axis.lengthMm, 4);
      expect(Number(length.annotation.data.cachedStats[`imageId:${imageId}`].length)).toBeCloseTo(axis.lengthMm, 6);
      expect(axis.lengthMm).toBe(finding.longestDiameterMm); // the fixture's finding, measured as the detector does
    });
    expect(empty).toEqual({});
  });

  it("has the shape OHIF's SR display code reads (Image Library Group, tracking UIDs, one line per finding)", () => {
    // Mirrors @ohif/app 3.13.2's extensions/cornerstone-dicom-sr getSopClassHandlerModule: _getReferencedImagesList
    // and _getMeasurements (groups merged by Tracking Unique Identifier; the first Tracking Identifier and the first
    // top-level SCOORD of the merged items make the measurement; its SCOORD's SELECTED FROM image places it).
    const ds = readNaturalized(withFindings);
    const byCode = (items: any[], value: string) => items.filter((i) => i.ConceptNameCodeSequence[0].CodeValue === value);
    const library = byCode(ds.ContentSequence, "111028")[0];
    const libraryGroup = byCode(library.ContentSequence, "126200")[0];
    expect(libraryGroup.ContentSequence.map((i: any) => i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)).toEqual(
      volume.sourceSlices.map((s) => s.sopInstanceUID),
    );
    const groups = byCode(byCode(ds.ContentSequence, "126010")[0].ContentSequence, "125007");
    expect(groups.map((g: any) => g.ContentTemplateSequence[0].TemplateIdentifier)).toEqual(["1410", "1411", "1410", "1411"]);
    const merged = new Map<string, any[]>();
    for (const group of groups) {
      const uid = byCode(group.ContentSequence, "112040")[0].UID;
      merged.set(uid, [...(merged.get(uid) ?? []), ...group.ContentSequence]);
    }
    expect([...merged.keys()]).toEqual(findings.map((f) => f.trackingUid));
    findings.forEach((finding) => {
      const items = merged.get(finding.trackingUid)!;
      const axis = longAxis(finding.mask, volume);
      expect(items.find((i) => i.ValueType === "UIDREF").UID).toBe(finding.trackingUid);
      expect(byCode(items, "112039").map((i: any) => i.TextValue)).toEqual([
        `Cornerstone3DTools@^0.1.0:Length:${finding.trackingId}`,
        finding.trackingId,
      ]);
      const lines = items.filter((i) => i.ValueType === "SCOORD" || i.ValueType === "SCOORD3D");
      expect(lines).toHaveLength(1);
      expect(lines[0].GraphicType).toBe("POLYLINE");
      expect(lines[0].GraphicData).toEqual(axis.ends.flatMap((e) => [e.column + 0.5, e.row + 0.5]));
      expect(lines[0].ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID).toBe(
        volume.sourceSlices[axis.slice]!.sopInstanceUID,
      );
      const nums = items.filter((i) => i.ValueType === "NUM");
      expect(nums.map((i) => i.ConceptNameCodeSequence[0].CodeMeaning)).toEqual(["Long Axis", "Volume", "Certainty of Finding"]);
      expect(Number(nums[0].MeasuredValueSequence[0].NumericValue)).toBeCloseTo(axis.lengthMm, 9);
      // What the Length adapter reads: the first NUM, INFERRED FROM the same line on the same image.
      const inferred = nums[0].ContentSequence[0];
      expect(inferred.RelationshipType).toBe("INFERRED FROM");
      expect(inferred.GraphicData).toEqual(lines[0].GraphicData);
      expect(inferred.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID).toBe(
        volume.sourceSlices[axis.slice]!.sopInstanceUID,
      );
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
