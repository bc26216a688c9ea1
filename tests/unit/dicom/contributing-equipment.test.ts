/**
 * The algorithm as contributing equipment (IHE AIR): its Device UID is the same for the same model on any node and
 * run, and changes when the model does (id, version or weights), not when only ct-enhance is upgraded; the item
 * names it as AIR asks; the SR's Procedure Reported says what was analysed.
 */
import { describe, expect, it } from "vitest";
import {
  type AlgorithmDevice,
  algorithmContributingEquipment,
  algorithmDeviceUid,
  contributingEquipment,
  PROCESSING_EQUIPMENT,
} from "../../../src/dicom/contributing-equipment.js";
import { CT_OF_CHEST } from "../../../src/dicom/sr/codes.js";
import { procedureReported } from "../../../src/dicom/sr/measurement-report.js";
import { isUid } from "../../../src/dicom/value-formats.js";
import { syntheticVolume } from "../../helpers/sr-fixtures.js";

const DEVICE: AlgorithmDevice = {
  manufacturer: "ct-enhance",
  modelId: "nodule-detector-small",
  modelVersion: "0.1.0",
  modelSha256: "a57c57b7ad92cce03800f744ab0f83cb3973aea082a23cdf4096626035e219de",
  softwareVersion: "0.1.0",
};

describe("the algorithm's Device UID", () => {
  it("is a UID, the same for the same model", () => {
    expect(isUid(algorithmDeviceUid(DEVICE))).toBe(true);
    expect(algorithmDeviceUid({ ...DEVICE })).toBe(algorithmDeviceUid(DEVICE));
  });

  it("changes when the model's id, version or weights change, not with ct-enhance's version", () => {
    const uid = algorithmDeviceUid(DEVICE);
    expect(algorithmDeviceUid({ ...DEVICE, modelId: "nodule-detector-large" })).not.toBe(uid);
    expect(algorithmDeviceUid({ ...DEVICE, modelVersion: "0.2.0" })).not.toBe(uid);
    expect(algorithmDeviceUid({ ...DEVICE, modelSha256: `b${DEVICE.modelSha256.slice(1)}` })).not.toBe(uid);
    expect(algorithmDeviceUid({ ...DEVICE, softwareVersion: "0.2.0" })).toBe(uid);
    // A two-stage detector: its candidate classifier's weights are part of the device, an empty list is not.
    const classifier = `c${DEVICE.modelSha256.slice(1)}`;
    expect(algorithmDeviceUid({ ...DEVICE, companionSha256s: [classifier] })).not.toBe(uid);
    expect(algorithmDeviceUid({ ...DEVICE, companionSha256s: [`d${classifier.slice(1)}`] }))
      .not.toBe(algorithmDeviceUid({ ...DEVICE, companionSha256s: [classifier] }));
    expect(algorithmDeviceUid({ ...DEVICE, companionSha256s: [] })).toBe(uid);
    expect(() => algorithmDeviceUid({ ...DEVICE, companionSha256s: ["abc"] })).toThrow(/companionSha256s/);
  });

  it("refuses a device without a proper sha256, naming the field", () => {
    expect(() => algorithmDeviceUid({ ...DEVICE, modelSha256: "abc" })).toThrow(/modelSha256/);
    expect(() => algorithmDeviceUid({ ...DEVICE, modelId: "" })).toThrow(/modelId/);
  });
});

describe("the Contributing Equipment Sequence", () => {
  const when = new Date("2024-01-02T10:30:00.000Z");

  it("has the algorithm's item as IHE AIR asks: Processing Equipment, model id, versions, Device UID", () => {
    expect(algorithmContributingEquipment(DEVICE, { dateTime: when, description: "test" })).toEqual({
      Manufacturer: "ct-enhance",
      ManufacturerModelName: "nodule-detector-small",
      SoftwareVersions: ["0.1.0", "ct-enhance 0.1.0"],
      DeviceUID: algorithmDeviceUid(DEVICE),
      PurposeOfReferenceCodeSequence: [{ CodeValue: PROCESSING_EQUIPMENT.value, CodingSchemeDesignator: "DCM", CodeMeaning: "Processing Equipment" }],
      ContributionDateTime: "20240102103000.000",
      ContributionDescription: "test",
    });
  });

  it("lists the source's scanner first when its header names one, then the algorithm", () => {
    const withScanner = contributingEquipment({ Manufacturer: "GE MEDICAL SYSTEMS" }, DEVICE, { dateTime: when, description: "x" });
    expect(withScanner.map((e) => e.Manufacturer)).toEqual(["GE MEDICAL SYSTEMS", "ct-enhance"]);
    expect(contributingEquipment({ Manufacturer: "" }, DEVICE, { dateTime: when, description: "x" })).toHaveLength(1);
  });
});

describe("Procedure Reported", () => {
  it("is the caller's, else the source's Procedure Code Sequence, else CT of chest", () => {
    const volume = syntheticVolume();
    expect(procedureReported({ volume })).toEqual(CT_OF_CHEST);
    const ctChest = { value: "24627-2", scheme: "LN", meaning: "CT Chest" };
    volume.sliceHeaders[0]!.ProcedureCodeSequence = [{ CodeValue: ctChest.value, CodingSchemeDesignator: "LN", CodeMeaning: ctChest.meaning }];
    expect(procedureReported({ volume })).toEqual(ctChest);
    expect(procedureReported({ volume, procedureReported: CT_OF_CHEST })).toEqual(CT_OF_CHEST);
    // Not writable as a Code Value (SH, 16 characters): the default rather than a broken item.
    volume.sliceHeaders[0]!.ProcedureCodeSequence = [{ CodeValue: "16334891000119106", CodingSchemeDesignator: "SCT", CodeMeaning: "Low dose CT of chest" }];
    expect(procedureReported({ volume })).toEqual(CT_OF_CHEST);
  });
});
