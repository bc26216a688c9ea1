import { data } from "dcmjs";
import { describe, expect, it } from "vitest";
import { patientAndStudyFrom } from "../../src/dicom/sr/dicom-file.js";

/** A header as src/dicom/volume.ts gets it: parsed by dcmjs, whose PN values carry accessor methods. */
function parsedHeader(): Record<string, unknown> {
  const meta = { TransferSyntaxUID: "1.2.840.10008.1.2.1", MediaStorageSOPClassUID: "1.2.840.10008.5.1.4.1.1.2", MediaStorageSOPInstanceUID: "1.2.3.4" };
  const dict = new data.DicomDict(data.DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = data.DicomMetaDictionary.denaturalizeDataset({
    SOPClassUID: "1.2.840.10008.5.1.4.1.1.2", SOPInstanceUID: "1.2.3.4", StudyInstanceUID: "1.2.3", PatientName: "Doe^Jane", PatientID: "P1",
  });
  const parsed = data.DicomMessage.readFile(dict.write());
  return data.DicomMetaDictionary.naturalizeDataset(parsed.dict) as Record<string, unknown>;
}

describe("patient and study copied into SR and SEG", () => {
  it("takes a dcmjs-parsed person name (the RICORD series has one) without failing to clone it", () => {
    const header = parsedHeader();
    const copied = patientAndStudyFrom(header);
    expect(JSON.stringify(copied.PatientName)).toContain("Doe^Jane");
    expect(copied.PatientID).toBe("P1");
  });
});
