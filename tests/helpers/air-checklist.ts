/**
 * The IHE Radiology AI Results (AIR) checklist of docs/ihe-air.md, as code: one row per requirement, each checked on
 * an object twice, through our own parse (dcmjs) and through DCMTK's (dcmdump, and dsrdump for the SR). The row ids
 * are the table's; tests/integration/air-checklist.test.ts runs every row on a real job's derived CT, SR and SEG.
 */
import { expect } from "vitest";
import { type AlgorithmDevice, algorithmDeviceUid } from "../../src/dicom/contributing-equipment.js";
import type { CodedConcept } from "../../src/dicom/coded-concept.js";
import { SopClass } from "../../src/dicom/part10.js";
import { contentTree, type ContentTreeNode } from "../../src/dicom/sr/content-tree.js";
import { isUid } from "../../src/dicom/value-formats.js";
import { type DumpElement, itemsAt, valuesAt } from "./dcmdump-tree.js";

export type AirObjectKind = "derived CT" | "SR" | "SEG";

/** One object as both parsers read it. */
export interface AirObject {
  kind: AirObjectKind;
  /** dcmjs, naturalized */
  ds: Record<string, any>;
  /** dcmdump, parsed */
  dump: DumpElement[];
  /** dsrdump's text (SR only) */
  dsr?: string;
}

/** What the objects must say: the algorithm that made them and the procedure it analysed. */
export interface AirExpectations {
  device: AlgorithmDevice;
  /** The model's human-readable name (manifest `name`). */
  modelName: string;
  procedureReported: CodedConcept;
}

export interface AirRequirement {
  id: string;
  objects: readonly AirObjectKind[];
  requirement: string;
  check(o: AirObject, expected: AirExpectations): void;
}

const ALL: readonly AirObjectKind[] = ["derived CT", "SR", "SEG"];
const first = (v: unknown): any => (Array.isArray(v) ? v[0] : v);
const asList = (v: unknown): any[] => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);
const codeText = (c: CodedConcept): string => `(${c.value}, ${c.scheme}, "${c.meaning}")`;

/** The algorithm's Contributing Equipment item: dcmjs's and dcmdump's (the item whose Manufacturer is ours). */
function algorithmItem(o: AirObject, expected: AirExpectations): { ds: any; dump: DumpElement[] } {
  const ds = asList(o.ds.ContributingEquipmentSequence).filter((i) => i.Manufacturer === expected.device.manufacturer);
  const dump = itemsAt(o.dump, "0018,a001").filter((i) => valuesAt(i, "0008,0070")[0] === expected.device.manufacturer);
  expect(ds, `${o.kind}: one Contributing Equipment item for the algorithm (dcmjs)`).toHaveLength(1);
  expect(dump, `${o.kind}: one Contributing Equipment item for the algorithm (dcmdump)`).toHaveLength(1);
  return { ds: ds[0], dump: dump[0]! };
}

/** The SR's measurement groups (TID 1410/1411/1501 containers under Imaging Measurements). */
export function measurementGroups(ds: Record<string, any>): ContentTreeNode[] {
  const measurements = contentTree(ds).children?.find((c) => c.concept?.startsWith("(126010, DCM"));
  return measurements?.children ?? [];
}

const childValue = (group: ContentTreeNode, conceptValue: string): unknown[] =>
  (group.children ?? []).filter((c) => c.concept?.startsWith(`(${conceptValue}, DCM`)).map((c) => c.value);

export const AIR_CHECKLIST: readonly AirRequirement[] = [
  {
    id: "EQ-1",
    objects: ALL,
    requirement: "Contributing Equipment item for the algorithm, Purpose of Reference (109102, DCM, \"Processing Equipment\")",
    check(o, expected) {
      const item = algorithmItem(o, expected);
      expect(first(item.ds.PurposeOfReferenceCodeSequence)).toMatchObject({ CodeValue: "109102", CodingSchemeDesignator: "DCM", CodeMeaning: "Processing Equipment" });
      expect(valuesAt(item.dump, "0040,a170", "0008,0100")).toEqual(["109102"]);
      expect(valuesAt(item.dump, "0040,a170", "0008,0102")).toEqual(["DCM"]);
    },
  },
  {
    id: "EQ-2",
    objects: ALL,
    requirement: "that item's Manufacturer (ct-enhance) and Manufacturer's Model Name (the model id)",
    check(o, expected) {
      const item = algorithmItem(o, expected);
      expect(item.ds.ManufacturerModelName).toBe(expected.device.modelId);
      expect(valuesAt(item.dump, "0008,1090")).toEqual([expected.device.modelId]);
    },
  },
  {
    id: "EQ-3",
    objects: ALL,
    requirement: "that item's Software Versions: the model's version, then ct-enhance's",
    check(o, expected) {
      const versions = [expected.device.modelVersion, `${expected.device.manufacturer} ${expected.device.softwareVersion}`];
      const item = algorithmItem(o, expected);
      expect(asList(item.ds.SoftwareVersions)).toEqual(versions);
      expect(valuesAt(item.dump, "0018,1020")).toEqual(versions);
    },
  },
  {
    id: "EQ-4",
    objects: ALL,
    requirement: "that item's Device UID, from the model's id, version and sha256 (changes when the model changes)",
    check(o, expected) {
      const uid = algorithmDeviceUid(expected.device);
      const item = algorithmItem(o, expected);
      expect(item.ds.DeviceUID).toBe(uid);
      expect(valuesAt(item.dump, "0018,1002")).toEqual([uid]);
    },
  },
  {
    id: "SR-1",
    objects: ["SR"],
    requirement: "Comprehensive 3D SR Storage",
    check(o) {
      expect(o.ds.SOPClassUID).toBe(SopClass.Comprehensive3dSr);
      expect(valuesAt(o.dump, "0008,0016")).toEqual([SopClass.Comprehensive3dSr]);
      expect(o.dsr!.split("\n")[0]).toBe("Comprehensive 3D SR Document");
    },
  },
  {
    id: "SR-2",
    objects: ["SR"],
    requirement: "TID 1500 root: (126000, DCM, \"Imaging Measurement Report\"), template 1500",
    check(o) {
      expect(first(o.ds.ConceptNameCodeSequence)).toMatchObject({ CodeValue: "126000", CodingSchemeDesignator: "DCM" });
      expect(first(o.ds.ContentTemplateSequence)).toMatchObject({ MappingResource: "DCMR", TemplateIdentifier: "1500" });
      expect(o.dsr).toMatch(/^<CONTAINER:\(126000,DCM,"Imaging Measurement Report"\)=SEPARATE> {2}# TID 1500 \(DCMR\)$/m);
    },
  },
  {
    id: "SR-3",
    objects: ["SR"],
    requirement: "Procedure Reported (121058, DCM): the imaging procedure analysed",
    check(o, expected) {
      const node = contentTree(o.ds).children?.find((c) => c.concept?.startsWith("(121058, DCM"));
      expect(node?.value).toBe(codeText(expected.procedureReported));
      const { value, scheme, meaning } = expected.procedureReported;
      expect(o.dsr).toContain(`<has concept mod CODE:(121058,DCM,"Procedure reported")=(${value},${scheme},"${meaning}")>`);
    },
  },
  {
    id: "SR-4",
    objects: ["SR"],
    requirement: "Verification Flag UNVERIFIED (and Completion Flag COMPLETE)",
    check(o) {
      expect([o.ds.VerificationFlag, o.ds.CompletionFlag]).toEqual(["UNVERIFIED", "COMPLETE"]);
      expect([...valuesAt(o.dump, "0040,a493"), ...valuesAt(o.dump, "0040,a491")]).toEqual(["UNVERIFIED", "COMPLETE"]);
      expect(o.dsr).toMatch(/^Verification Flag +: UNVERIFIED$/m);
    },
  },
  {
    id: "SR-5",
    objects: ["SR"],
    requirement: "observer is the algorithm: Observer Type Device, Device Observer UID = its Device UID",
    check(o, expected) {
      const uid = algorithmDeviceUid(expected.device);
      const root = contentTree(o.ds).children ?? [];
      expect(root.find((c) => c.concept?.startsWith("(121005, DCM"))?.value).toBe('(121007, DCM, "Device")');
      expect(root.find((c) => c.concept?.startsWith("(121012, DCM"))?.value).toBe(uid);
      expect(o.dsr).toContain(`<has obs context UIDREF:(121012,DCM,"Device Observer UID")="${uid}">`);
    },
  },
  {
    id: "SR-6",
    objects: ["SR"],
    requirement: "every measurement group: Tracking Identifier (112039) and Tracking Unique Identifier (112040), one UID per finding",
    check(o) {
      const groups = measurementGroups(o.ds);
      expect(groups.length).toBeGreaterThan(0);
      for (const group of groups) {
        expect(childValue(group, "112039")).toHaveLength(1);
        const uids = childValue(group, "112040");
        expect(uids).toHaveLength(1);
        expect(isUid(uids[0])).toBe(true);
      }
      // A finding's groups (TID 1410 and 1411) share its UID and name it; findings do not share one. The long-axis
      // group's identifier is the finding's behind the prefix OHIF needs to show it as a length (sr/planar-roi.ts).
      const byUid = new Map<unknown, unknown>();
      for (const g of groups) {
        const uid = childValue(g, "112040")[0];
        const text = String(childValue(g, "112039")[0]);
        const id = g.template === "DCMR 1410" ? text.replace(/^Cornerstone3DTools@\^0\.1\.0:Length:/, "") : text;
        if (g.template === "DCMR 1410") expect(text, "the long-axis group's identifier").toBe(`Cornerstone3DTools@^0.1.0:Length:${id}`);
        expect(byUid.get(uid) ?? id, "one finding's identifier per tracking UID").toBe(id);
        byUid.set(uid, id);
      }
      expect(new Set(byUid.values()).size).toBe(byUid.size);
      const dsrGroups = o.dsr!.split('CONTAINER:(125007,DCM,"Measurement Group")').slice(1);
      expect(dsrGroups).toHaveLength(groups.length);
      for (const text of dsrGroups) {
        expect(text).toMatch(/<has obs context TEXT:\(112039,DCM,"Tracking Identifier"\)="[^"]+">/);
        expect(text).toMatch(/<has obs context UIDREF:\(112040,DCM,"Tracking Unique Identifier"\)="[0-9.]+">/);
      }
    },
  },
  {
    id: "SR-7",
    objects: ["SR"],
    requirement: "every measurement group: Algorithm Name (111001) and Algorithm Version (111003) of the model",
    check(o, expected) {
      const groups = measurementGroups(o.ds);
      for (const group of groups) {
        expect(childValue(group, "111001")).toEqual([expected.modelName]);
        expect(childValue(group, "111003")).toEqual([expected.device.modelVersion]);
      }
      const count = (pattern: string): number => o.dsr!.split(pattern).length - 1;
      expect(count(`<has concept mod TEXT:(111001,DCM,"Algorithm Name")="${expected.modelName}">`)).toBe(groups.length);
      expect(count(`<has concept mod TEXT:(111003,DCM,"Algorithm Version")="${expected.device.modelVersion}">`)).toBe(groups.length);
    },
  },
  {
    id: "SEG-1",
    objects: ["SEG"],
    requirement: "every segment: Segment Algorithm Type AUTOMATIC, Segment Algorithm Name (the model's name)",
    check(o, expected) {
      const name = expected.modelName.slice(0, 64); // LO
      const segments = asList(o.ds.SegmentSequence);
      expect(segments.length).toBeGreaterThan(0);
      for (const s of segments) expect([s.SegmentAlgorithmType, s.SegmentAlgorithmName]).toEqual(["AUTOMATIC", name]);
      expect(valuesAt(o.dump, "0062,0002", "0062,0008")).toEqual(segments.map(() => "AUTOMATIC"));
      expect(valuesAt(o.dump, "0062,0002", "0062,0009")).toEqual(segments.map(() => name));
    },
  },
  {
    id: "SEG-2",
    objects: ["SEG"],
    requirement: "every segment: Segmentation Algorithm Identification, family (123110, DCM, \"Artificial Intelligence\") (CID 7162), name and version",
    check(o, expected) {
      const name = expected.modelName.slice(0, 64); // LO
      const segments = asList(o.ds.SegmentSequence);
      for (const s of segments) {
        const algorithm = first(s.SegmentationAlgorithmIdentificationSequence);
        expect(first(algorithm.AlgorithmFamilyCodeSequence)).toMatchObject({ CodeValue: "123110", CodingSchemeDesignator: "DCM" });
        expect([algorithm.AlgorithmName, algorithm.AlgorithmVersion]).toEqual([name, expected.device.modelVersion]);
      }
      const path = ["0062,0002", "0062,0007"] as const;
      expect(valuesAt(o.dump, ...path, "0066,002f", "0008,0100")).toEqual(segments.map(() => "123110"));
      expect(valuesAt(o.dump, ...path, "0066,0036")).toEqual(segments.map(() => name));
      expect(valuesAt(o.dump, ...path, "0066,0031")).toEqual(segments.map(() => expected.device.modelVersion));
    },
  },
  {
    id: "CT-1",
    objects: ["derived CT"],
    requirement: "Derivation Code Sequence and a Derivation Description naming the model",
    check(o, expected) {
      expect(first(o.ds.DerivationCodeSequence)).toMatchObject({ CodeValue: "AI-SYNTHESIS", CodingSchemeDesignator: "99CTENHANCE" });
      expect(valuesAt(o.dump, "0008,9215", "0008,0100")).toEqual(["AI-SYNTHESIS"]);
      const model = `model ${expected.device.modelId} ${expected.device.modelVersion}`;
      expect(o.ds.DerivationDescription).toContain(model);
      expect(valuesAt(o.dump, "0008,2111")[0]).toContain(model);
    },
  },
  {
    id: "CT-2",
    objects: ["derived CT"],
    requirement: "marked AI-generated: Image Type DERIVED\\SECONDARY, Series Description, Image Comments, Burned In Annotation NO",
    check(o) {
      expect(asList(o.ds.ImageType).slice(0, 2)).toEqual(["DERIVED", "SECONDARY"]);
      expect(valuesAt(o.dump, "0008,0008").slice(0, 2)).toEqual(["DERIVED", "SECONDARY"]);
      for (const text of [o.ds.SeriesDescription, o.ds.ImageComments, o.ds.DerivationDescription]) {
        expect(text).toMatch(/AI-generated/);
        expect(text).toMatch(/not for diagnostic use/i);
      }
      expect(valuesAt(o.dump, "0008,103e")[0]).toMatch(/AI-generated NOT FOR DIAGNOSTIC USE/);
      expect(o.ds.BurnedInAnnotation).toBe("NO");
    },
  },
  {
    id: "CT-3",
    objects: ["derived CT"],
    requirement: "Source Image Sequence to the analysed image, purpose (121322, DCM)",
    check(o) {
      expect(first(first(o.ds.SourceImageSequence).PurposeOfReferenceCodeSequence)).toMatchObject({ CodeValue: "121322", CodingSchemeDesignator: "DCM" });
      expect(valuesAt(o.dump, "0008,2112", "0040,a170", "0008,0100")).toEqual(["121322"]);
    },
  },
  {
    id: "ALL-1",
    objects: ["SR", "SEG"],
    requirement: "Series Description says AI-generated, not for diagnostic use",
    check(o) {
      expect(o.ds.SeriesDescription).toMatch(/AI-generated.*NOT FOR DIAGNOSTIC USE/);
      expect(valuesAt(o.dump, "0008,103e")[0]).toMatch(/AI-generated.*NOT FOR DIAGNOSTIC USE/);
    },
  },
];
