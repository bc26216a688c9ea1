/**
 * Every writer shares one base layer (src/dicom/part10.ts, source-attributes.ts): the same file meta (one
 * Implementation Class UID, the release as version name) and the same patient, study and de-identification
 * attributes copied from the source. Written from a de-identified source whose headers dcmjs parsed (person names
 * with accessor methods, a DS number too long for the VR), the derived CT, the SR and the SEG agree.
 */
import { data } from "dcmjs";
import { describe, expect, it } from "vitest";
import type { CtVolume } from "../../../src/dicom/ct-volume.js";
import { derivedCtWriter } from "../../../src/dicom/derived-ct.js";
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from "../../../src/dicom/part10.js";
import { writeSegmentation } from "../../../src/dicom/seg.js";
import { PATIENT_STUDY_ATTRIBUTES } from "../../../src/dicom/source-attributes.js";
import { writeMeasurementReport } from "../../../src/dicom/sr/measurement-report.js";
import { deterministicUid } from "../../../src/dicom/uid.js";
import { SOFTWARE_VERSION } from "../../../src/version.js";
import { ALGORITHM, CONTENT_DATE, dcmjsParsed, SEG_IDENTITY, SR_IDENTITY, syntheticVolume, twoFindings } from "../../helpers/sr-fixtures.js";

function deidentifiedVolume(): CtVolume {
  const volume = syntheticVolume();
  volume.sliceHeaders = volume.sliceHeaders.map((header) => {
    const { ReferringPhysicianName: _absent, ...rest } = header as Record<string, unknown>;
    return dcmjsParsed({
      ...rest,
      PatientName: "Doe^Jane",
      PatientIdentityRemoved: "YES",
      DeidentificationMethod: "DCM:113100/113105/113107",
      PatientSize: 1.7345678901234567,
    });
  });
  return volume;
}

function read(bytes: Uint8Array): { meta: Record<string, unknown>; dataset: Record<string, unknown> } {
  const dicom = data.DicomMessage.readFile(bytes.slice().buffer);
  return {
    meta: data.DicomMetaDictionary.naturalizeDataset(dicom.meta),
    dataset: data.DicomMetaDictionary.naturalizeDataset(dicom.dict),
  };
}

describe("the DICOM base layer every writer uses", () => {
  const volume = deidentifiedVolume();
  const findings = twoFindings(volume);
  const seriesInstanceUID = deterministicUid("test", "derived");
  const written = {
    "derived CT": derivedCtWriter(volume, {
      seriesInstanceUID,
      sopInstanceUID: (k) => deterministicUid("test", "derived", k),
      seriesNumber: 100_001,
      seriesDescription: "Syn-CTA AI-generated NOT FOR DIAGNOSTIC USE",
      derivationDescription: "test",
      model: { id: "m", version: "1", name: "model", sha256: "0".repeat(64) },
      software: { manufacturer: "ct-enhance", version: SOFTWARE_VERSION },
      contentDate: CONTENT_DATE,
    }).instance(0, new Float32Array(volume.rows * volume.columns)),
    SR: writeMeasurementReport({
      volume, findings, algorithm: ALGORITHM, identity: SR_IDENTITY,
      segmentation: { seriesInstanceUID: SEG_IDENTITY.seriesInstanceUID, sopInstanceUID: SEG_IDENTITY.sopInstanceUID },
    }),
    SEG: writeSegmentation({ volume, findings, algorithm: ALGORITHM, identity: SEG_IDENTITY }),
  };

  it.each(Object.entries(written))("%s: one file meta, naming ct-enhance and its release", (_kind, bytes) => {
    const { meta } = read(bytes);
    expect(meta.ImplementationClassUID).toBe(IMPLEMENTATION_CLASS_UID);
    expect(meta.ImplementationVersionName).toBe(IMPLEMENTATION_VERSION_NAME);
    expect(IMPLEMENTATION_VERSION_NAME).toBe(`CT_ENHANCE_${SOFTWARE_VERSION}`.slice(0, 16));
    expect(meta.TransferSyntaxUID).toBe("1.2.840.10008.1.2.1");
  });

  it.each(Object.entries(written))("%s: the source's patient, study and de-identification, as one list says", (_kind, bytes) => {
    const { dataset } = read(bytes);
    expect(JSON.stringify(dataset.PatientName)).toContain("Doe^Jane");
    expect(dataset).toMatchObject({
      PatientID: "PHANTOM-001",
      PatientIdentityRemoved: "YES",
      DeidentificationMethod: "DCM:113100/113105/113107",
      StudyInstanceUID: volume.studyInstanceUID,
      StudyDate: "20240102",
      AccessionNumber: "ACC-1",
      StudyDescription: "CT CHEST",
    });
    expect(String(dataset.PatientSize).length).toBeLessThanOrEqual(16); // DS, re-formatted
    expect(Number(dataset.PatientSize)).toBeCloseTo(1.7345678901234567, 10);
    expect("ReferringPhysicianName" in dataset).toBe(true); // type 2: present, empty
    for (const keyword of PATIENT_STUDY_ATTRIBUTES.type2) expect(keyword in dataset, keyword).toBe(true);
  });
});
