import { describe, expect, it } from "vitest";
import { patientAndStudyFrom } from "../../src/dicom/sr/dicom-file.js";
import { dcmjsParsed } from "../helpers/sr-fixtures.js";

function parsedHeader(): Record<string, unknown> {
  return dcmjsParsed({
    SOPClassUID: "1.2.840.10008.5.1.4.1.1.2", SOPInstanceUID: "1.2.3.4", StudyInstanceUID: "1.2.3", PatientName: "Doe^Jane", PatientID: "P1",
  });
}

describe("patient and study copied into SR and SEG", () => {
  it("takes a dcmjs-parsed person name (the RICORD series has one) without failing to clone it", () => {
    const header = parsedHeader();
    const copied = patientAndStudyFrom(header);
    expect(JSON.stringify(copied.PatientName)).toContain("Doe^Jane");
    expect(copied.PatientID).toBe("P1");
  });
});
