import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { data } from "dcmjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CtVolume, NaturalizedDataset, Vector3 } from "../../../src/dicom/ct-volume.js";
import { derivedCtWriter, writeDerivedCtSeries } from "../../../src/dicom/derived-ct.js";
import { AI_IMAGE_SYNTHESIS, type DerivedSeriesIdentity, HU_RANGE } from "../../../src/dicom/derived-ct-modules.js";
import { algorithmDeviceUid } from "../../../src/dicom/contributing-equipment.js";
import { DicomWriteError } from "../../../src/dicom/dicom-errors.js";
import { formatDS } from "../../../src/dicom/value-formats.js";
import { deterministicUid } from "../../../src/dicom/uid.js";
import { assembleVolume } from "../../../src/dicom/volume.js";
import { readCtSeries, requireCtData } from "../../helpers/ct-data.js";
import { requireTools } from "../../helpers/system-tools.js";

const haveDciodvfy = requireTools("dciodvfy");
const haveData = requireCtData("lidc-idri-0002-ncct");

const scratch = mkdtempSync(path.join(tmpdir(), "ct-enhance-derived-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function identityFor(source: CtVolume): DerivedSeriesIdentity {
  const seriesInstanceUID = deterministicUid("test", "series", source.seriesInstanceUID);
  return {
    seriesInstanceUID,
    sopInstanceUID: (k) => deterministicUid("test", "instance", seriesInstanceUID, k),
    seriesNumber: 100_001,
    seriesDescription: "SynCTA AI-generated NOT FOR DIAGNOSTIC USE",
    derivationDescription: "synthesis by SynCTA (model synct-a 1.2.0) in ct-enhance 0.1.0. AI-generated image, not for diagnostic use.",
    model: { id: "synct-a", version: "1.2.0", name: "SynCTA", sha256: "c0".repeat(32) },
    software: { manufacturer: "ct-enhance", version: "0.1.0" },
    contentDate: new Date(Date.UTC(2024, 4, 6, 12, 34, 56, 789)),
  };
}

function readHeader(bytes: Uint8Array): NaturalizedDataset {
  const dicom = data.DicomMessage.readFile(bytes.slice().buffer);
  delete dicom.dict["7FE00010"];
  return data.DicomMetaDictionary.naturalizeDataset(dicom.dict) as NaturalizedDataset;
}

/** dciodvfy's "Error" lines for one written instance (warnings are allowed). */
function dciodvfyErrors(bytes: Uint8Array, name: string): string[] {
  const file = path.join(scratch, name);
  writeFileSync(file, bytes);
  const run = spawnSync("dciodvfy", [file], { encoding: "utf8" });
  return `${run.stdout}\n${run.stderr}`.split("\n").filter((line) => /^\s*Error/.test(line));
}

/** A small CT volume with the headers a scanner writes (one non-ASCII name to exercise the character set). */
function syntheticVolume(): CtVolume {
  const slices = 12;
  const rows = 16;
  const columns = 20;
  const hu = new Float32Array(slices * rows * columns);
  hu.forEach((_, i) => (hu[i] = -1500 + (i % 5000) * 1.01)); // crosses both ends of the HU range
  const positions: Vector3[] = Array.from({ length: slices }, (_, k) => [-100.25, -80.5, -200 + 2.5 * k]);
  const header = (k: number): NaturalizedDataset => ({
    SpecificCharacterSet: "ISO_IR 192",
    SOPClassUID: "1.2.840.10008.5.1.4.1.1.2",
    SOPInstanceUID: `1.2.826.0.1.3680043.2.1143.1.${k}`,
    PatientName: [{ Alphabetic: "Müller^Anna" }],
    PatientID: "ANON-0042",
    PatientBirthDate: "19500101",
    PatientSex: "F",
    PatientAge: "074Y",
    StudyDate: "20240102",
    StudyTime: "101500",
    AccessionNumber: "ACC42",
    ReferringPhysicianName: [],
    StudyID: "S1",
    StudyDescription: "CT CHEST",
    Manufacturer: "ACME",
    ManufacturerModelName: "Scanner 9000",
    BodyPartExamined: "CHEST",
    PatientPosition: "HFS",
    PositionReferenceIndicator: "",
    SliceThickness: 2.5,
    KVP: 120,
    XRayTubeCurrent: 200 + k,
    ConvolutionKernel: "STANDARD",
    RevolutionTime: 0.5,
    SliceLocation: -200 + 2.5 * k,
    AcquisitionNumber: 1,
    ContrastBolusAgent: "IV",
  });
  return {
    studyInstanceUID: "1.2.826.0.1.3680043.2.1143.2",
    seriesInstanceUID: "1.2.826.0.1.3680043.2.1143.3",
    frameOfReferenceUID: "1.2.826.0.1.3680043.2.1143.4",
    rows,
    columns,
    slices,
    hu,
    pixelSpacing: [0.7, 0.75],
    sliceSpacing: 2.5,
    imageOrientationPatient: [1, 0, 0, 0, 1, 0],
    imagePositionPatient: positions,
    sourceSlices: Array.from({ length: slices }, (_, k) => ({
      sopClassUID: "1.2.840.10008.5.1.4.1.1.2",
      sopInstanceUID: `1.2.826.0.1.3680043.2.1143.1.${k}`,
    })),
    sliceHeaders: Array.from({ length: slices }, (_, k) => header(k)),
  };
}

describe("derived CT series (synthetic volume)", () => {
  const volume = syntheticVolume();
  const identity = identityFor(volume);
  const written = [...writeDerivedCtSeries(volume, volume.hu, identity)];

  it("writes one instance per slice with the identity, geometry and AI marking", () => {
    expect(written.length).toBe(12);
    const headers = written.map(readHeader);
    headers.forEach((h, k) => {
      expect(h.SOPInstanceUID).toBe(identity.sopInstanceUID(k));
      expect(h.InstanceNumber).toBe(k + 1);
      expect(h.ImagePositionPatient).toEqual(volume.imagePositionPatient[k]);
      expect((h.SourceImageSequence as NaturalizedDataset[])[0]!.ReferencedSOPInstanceUID).toBe(volume.sourceSlices[k]!.sopInstanceUID);
      expect(h.XRayTubeCurrent).toBe(200 + k);
    });
    const h = headers[0]!;
    expect(h).toMatchObject({
      SOPClassUID: "1.2.840.10008.5.1.4.1.1.2",
      ImageType: ["DERIVED", "SECONDARY", "AXIAL"],
      StudyInstanceUID: volume.studyInstanceUID,
      SeriesInstanceUID: identity.seriesInstanceUID,
      FrameOfReferenceUID: volume.frameOfReferenceUID,
      SeriesNumber: 100_001,
      SeriesDescription: "SynCTA AI-generated NOT FOR DIAGNOSTIC USE",
      Manufacturer: "ct-enhance",
      PatientName: [{ Alphabetic: "Müller^Anna" }],
      SpecificCharacterSet: "ISO_IR 192",
      BurnedInAnnotation: "NO",
      ImageComments: "AI-generated by ct-enhance SynCTA (synct-a 1.2.0); not for diagnostic use",
      RescaleSlope: 1,
      RescaleIntercept: 0,
      WindowCenter: 40,
      WindowWidth: 400,
      ContrastBolusAgent: "IV",
    });
    const equipment = h.ContributingEquipmentSequence as NaturalizedDataset[];
    expect(equipment.map((e) => e.Manufacturer)).toEqual(["ACME", "ct-enhance"]);
    expect(equipment[1]).toMatchObject({
      ManufacturerModelName: "synct-a",
      SoftwareVersions: ["1.2.0", "ct-enhance 0.1.0"],
      DeviceUID: algorithmDeviceUid({ manufacturer: "ct-enhance", modelId: "synct-a", modelVersion: "1.2.0", modelSha256: "c0".repeat(32), softwareVersion: "0.1.0" }),
      ContributionDateTime: "20240506123456.789",
    });
    expect((equipment[1]!.PurposeOfReferenceCodeSequence as NaturalizedDataset[])[0]).toMatchObject({ CodeValue: "109102", CodingSchemeDesignator: "DCM" });
    expect((h.DerivationCodeSequence as NaturalizedDataset[])[0]).toMatchObject({ CodeValue: AI_IMAGE_SYNTHESIS.value });
  });

  it("stores HU as signed 16-bit, rounded, clipped to [-1024, 3071]", async () => {
    const back = await assembleVolume(written);
    expect(back.imagePositionPatient).toEqual(volume.imagePositionPatient);
    for (let i = 0; i < volume.hu.length; i += 1) {
      const expected = Math.min(HU_RANGE.max, Math.max(HU_RANGE.min, volume.hu[i]!));
      expect(Math.abs(back.hu[i]! - expected)).toBeLessThanOrEqual(0.5);
    }
  });

  it("keeps the header stable (golden file)", async () => {
    // Keywords sorted, dcmjs' bookkeeping (_vrMap) left out.
    const json = JSON.stringify(readHeader(written[0]!), (key, value: unknown) =>
      key === "_vrMap"
        ? undefined
        : value && typeof value === "object" && !Array.isArray(value)
          ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)))
          : value,
    2);
    await expect(`${json}\n`).toMatchFileSnapshot("./__golden__/derived-ct-header.json");
  });

  it("encodes exactly as dcmjs does a whole dataset (shared elements encoded once, then spliced in tag order)", () => {
    for (const instance of [written[0]!, written[7]!]) {
      const reencoded = new Uint8Array(data.DicomMessage.readFile(instance.slice().buffer).write());
      expect(Buffer.from(reencoded).equals(Buffer.from(instance))).toBe(true);
    }
  });

  it("writes any slice on its own, from that slice's HU, identical to the whole-series writer", () => {
    const writer = derivedCtWriter(volume, identity);
    const plane = volume.rows * volume.columns;
    const fifth = writer.instance(4, volume.hu.slice(4 * plane, 5 * plane));
    expect(Buffer.from(fifth).equals(Buffer.from(written[4]!))).toBe(true);
    expect(() => writer.instance(12, new Float32Array(plane))).toThrow(/slice 12 is not in the volume/);
    expect(() => writer.instance(0, new Float32Array(plane - 1))).toThrow(/has 319 voxels where a slice has 16x20/);
  });

  it("refuses output that does not fit the volume or holds NaN", () => {
    expect(() => [...writeDerivedCtSeries(volume, new Float32Array(10), identity)]).toThrow(DicomWriteError);
    const nan = Float32Array.from(volume.hu);
    nan[16 * 20 * 3 + 5] = Number.NaN;
    expect(() => [...writeDerivedCtSeries(volume, nan, identity)]).toThrow(/NaN at slice 4/);
  });

  it("formats decimal strings in 16 characters", () => {
    expect(formatDS(-175.50000000000003)).toBe("-175.5");
    expect(formatDS(0.1 + 0.2)).toBe("0.3");
    expect(formatDS(-1234567.123456789).length).toBeLessThanOrEqual(16);
    expect(formatDS(1e-20)).toBe("1e-20");
  });

  it.skipIf(!haveDciodvfy)("passes dciodvfy with zero errors", () => {
    expect(dciodvfyErrors(written[0]!, "synthetic-1.dcm")).toEqual([]);
    expect(dciodvfyErrors(written[11]!, "synthetic-12.dcm")).toEqual([]);
  });
});

describe.skipIf(!haveData)("derived CT series written from LIDC-IDRI-0002 and read back", () => {
  let source: CtVolume;
  let identity: DerivedSeriesIdentity;
  let output: Float32Array;
  let written: Uint8Array[];

  beforeAll(async () => {
    source = await assembleVolume(readCtSeries("lidc-idri-0002-ncct"));
    identity = identityFor(source);
    output = new Float32Array(source.hu.length); // a model's output: not integers
    for (let i = 0; i < output.length; i += 1) output[i] = source.hu[i]! + 0.3;
    written = [...writeDerivedCtSeries(source, output, identity)];
  });

  it("lands on the source: same study, frame of reference and slice positions; HU within 1", async () => {
    expect(written.length).toBe(261);
    const back = await assembleVolume(written);
    expect(back.studyInstanceUID).toBe(source.studyInstanceUID);
    expect(back.frameOfReferenceUID).toBe(source.frameOfReferenceUID);
    expect(back.seriesInstanceUID).toBe(identity.seriesInstanceUID);
    expect(back.imagePositionPatient).toEqual(source.imagePositionPatient);
    expect(back.imageOrientationPatient).toEqual(source.imageOrientationPatient);
    expect(back.pixelSpacing).toEqual(source.pixelSpacing);
    expect(back.sliceSpacing).toBeCloseTo(source.sliceSpacing, 6);
    expect(back.sourceSlices.map((s) => s.sopInstanceUID)).toEqual(source.sourceSlices.map((_, k) => identity.sopInstanceUID(k)));
    let inRange = 0;
    for (let i = 0; i < output.length; i += 1) {
      const v = output[i]!;
      if (v > HU_RANGE.min && v < HU_RANGE.max) {
        inRange += 1;
        if (Math.abs(back.hu[i]! - v) > 1) throw new Error(`voxel ${i}: wrote ${v}, read ${back.hu[i]}`);
      } else if (back.hu[i] !== (v <= HU_RANGE.min ? HU_RANGE.min : HU_RANGE.max)) {
        throw new Error(`voxel ${i}: ${v} not clipped (read ${back.hu[i]})`);
      }
    }
    expect(inRange).toBeGreaterThan(output.length / 2);
    const h = back.sliceHeaders[0]!;
    expect(h.PatientID).toBe(source.sliceHeaders[0]!.PatientID);
    expect(h.AccessionNumber).toBe(source.sliceHeaders[0]!.AccessionNumber);
    expect((h.SourceImageSequence as NaturalizedDataset[])[0]!.ReferencedSOPInstanceUID).toBe(source.sourceSlices[0]!.sopInstanceUID);
  });

  it.skipIf(!haveDciodvfy)("passes dciodvfy with zero errors (first, middle and last slice)", () => {
    for (const k of [0, 130, 260]) expect(dciodvfyErrors(written[k]!, `lidc-${k + 1}.dcm`)).toEqual([]);
  });
});
