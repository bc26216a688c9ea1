/**
 * The log scan can fail: a log with a planted patient value is found (field, series, file:line) and the report never
 * shows the value. Once with a made-up patient in a Part-10 file written here, once with a real input series' own
 * values (read at test time, never written down), planted in a log in a temporary folder.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { data } from "dcmjs";
import { afterAll, describe, expect, it } from "vitest";
import { ctSeriesFolder, requireCtData } from "../../helpers/ct-data.js";
import { describeFindings, logFilesUnder, patientIdentifiersOfFile, patientIdentifiersUnder, scanLogs } from "../../helpers/log-scan.js";

const work = mkdtempSync(path.join(tmpdir(), "ct-enhance-log-scan-"));

/** A header-only Part-10 file with this patient. */
function writePatientFile(folder: string, patient: { PatientName: string; PatientID: string; PatientBirthDate: string }): string {
  mkdirSync(folder, { recursive: true });
  const meta = data.DicomMetaDictionary.denaturalizeDataset({
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer, MediaStorageSOPClassUID: "1.2.840.10008.5.1.4.1.1.2",
    MediaStorageSOPInstanceUID: "2.25.1", TransferSyntaxUID: "1.2.840.10008.1.2.1", ImplementationClassUID: "2.25.2",
  });
  const dict = new data.DicomDict(meta);
  dict.dict = data.DicomMetaDictionary.denaturalizeDataset({
    SOPClassUID: "1.2.840.10008.5.1.4.1.1.2", SOPInstanceUID: "2.25.1", Modality: "CT", ...patient,
  });
  const file = path.join(folder, "0001.dcm");
  writeFileSync(file, Buffer.from(dict.write()));
  return file;
}

const logLines = (...lines: string[]): string => `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`;

describe("the log scan for patient data", () => {
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("finds a planted name (also written with spaces), ID or birth date, and reports where without the value", () => {
    const root = path.join(work, "series");
    writePatientFile(path.join(root, "made-up-series"), { PatientName: "Plantedlast^Plantedfirst", PatientID: "PID-778899", PatientBirthDate: "19310402" });
    const identifiers = patientIdentifiersUnder(root);
    expect(identifiers.map((i) => i.field).sort()).toEqual(["PatientBirthDate", "PatientID", "PatientName"]);
    const logs = path.join(work, "logs", "run-1");
    mkdirSync(logs, { recursive: true });
    writeFileSync(path.join(logs, "clean.log"), logLines("job 1 done", "series 1.2.3.4 PID-7788990 19310402123"));
    writeFileSync(path.join(logs, "leaky.log"), logLines("ok", "fetched Plantedfirst Plantedlast", "id PID-778899", "born 19310402"));
    const findings = scanLogs(logFilesUnder(path.join(work, "logs")), identifiers);
    expect(findings.map((f) => [path.basename(f.file), f.line, f.field])).toEqual([
      ["leaky.log", 2, "PatientName"], ["leaky.log", 3, "PatientID"], ["leaky.log", 4, "PatientBirthDate"],
    ]);
    const report = describeFindings(findings);
    expect(report).toMatch(/^PatientName of made-up-series found in .*leaky\.log:2$/m);
    expect(report).not.toMatch(/Planted|778899|19310402/);
  });

  it.runIf(requireCtData("lidc-idri-0002-ncct"))("finds a real input series' own value planted in a log", () => {
    const file = path.join(ctSeriesFolder("lidc-idri-0002-ncct"), "000001.dcm");
    const identifiers = patientIdentifiersOfFile(file, "lidc-idri-0002-ncct");
    expect(identifiers.length).toBeGreaterThan(0);
    const planted = identifiers[0]!;
    const log = path.join(work, "real.log");
    writeFileSync(log, logLines("nothing here", `leak: ${planted.forms[0]!}`));
    const findings = scanLogs([log], identifiers);
    expect(findings.map((f) => f.line)).toEqual([2]);
    expect(describeFindings(findings).includes(planted.forms[0]!), "the report shows the value").toBe(false);
  });
});
