/**
 * The log scan (issue 14, "no PHI in logs"): the PatientName, PatientID and PatientBirthDate of every real input series
 * are read from the series themselves (dcmjs, header only) when the scan runs, held in memory only, and searched for
 * in the service logs the suite kept. A finding names the field, the series folder and file:line, never the value, so
 * the scan's own output cannot leak what it looks for.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { data } from "dcmjs";

export const PATIENT_FIELDS = { PatientName: "00100010", PatientID: "00100020", PatientBirthDate: "00100030" } as const;
export type PatientField = keyof typeof PATIENT_FIELDS;

/** One value to look for: where it came from, and the forms a log could show it in. */
export interface PatientIdentifier {
  field: PatientField;
  /** The series folder's name (not PHI: the public collection's label). */
  source: string;
  forms: string[];
}

export interface LogFinding {
  field: PatientField;
  source: string;
  file: string;
  line: number;
}

/** Values shorter than this are not looked for: they would be found in any text. */
const MIN_LENGTH = 3;

function textOf(value: unknown): string {
  if (typeof value === "string") return value;
  if (value && typeof value === "object" && "Alphabetic" in value) return String((value as { Alphabetic: unknown }).Alphabetic ?? "");
  return "";
}

/** The forms of a value a log line could hold: as stored, and a person name with its ^ read as spaces, either way round. */
function formsOf(field: PatientField, value: string): string[] {
  const forms = new Set([value.trim()]);
  if (field === "PatientName") {
    const parts = value.split("^").map((part) => part.trim()).filter(Boolean);
    forms.add(parts.join(" "));
    if (parts.length >= 2) forms.add([parts[1], parts[0], ...parts.slice(2)].join(" "));
  }
  return [...forms].filter((form) => form.length >= MIN_LENGTH);
}

/** The identifiers of one Part-10 file's patient (read up to the pixel data only). */
export function patientIdentifiersOfFile(file: string, source: string): PatientIdentifier[] {
  const bytes = readFileSync(file);
  const dicom = data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength), {
    untilTag: "7FE00010",
  });
  return (Object.keys(PATIENT_FIELDS) as PatientField[]).flatMap((field) => {
    const value = textOf(dicom.dict[PATIENT_FIELDS[field]]?.Value?.[0]);
    const forms = formsOf(field, value);
    return forms.length > 0 ? [{ field, source, forms }] : [];
  });
}

/** The identifiers of every series folder under `root` (each folder's first and last file, as the suite sends them). */
export function patientIdentifiersUnder(root: string): PatientIdentifier[] {
  if (!existsSync(root)) return [];
  return readdirSync(root).sort().flatMap((name) => {
    const folder = path.join(root, name);
    if (!statSync(folder).isDirectory()) return [];
    const files = readdirSync(folder).filter((f) => f.toLowerCase().endsWith(".dcm")).sort();
    const ends = [...new Set([files[0], files[files.length - 1]])].filter((f): f is string => f !== undefined);
    return ends.flatMap((file) => patientIdentifiersOfFile(path.join(folder, file), name));
  });
}

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Every line of every file that holds one of the identifiers as a whole word (not inside a longer ID). */
export function scanLogs(files: string[], identifiers: PatientIdentifier[]): LogFinding[] {
  const patterns = identifiers.flatMap((identifier) => identifier.forms.map((form) => ({
    identifier,
    // JSON writes a backslash or a quote escaped; search the form as a log line would carry it.
    pattern: new RegExp(`(?<![A-Za-z0-9])${escapeRegExp(JSON.stringify(form).slice(1, -1))}(?![A-Za-z0-9])`),
    plain: new RegExp(`(?<![A-Za-z0-9])${escapeRegExp(form)}(?![A-Za-z0-9])`),
  })));
  const findings: LogFinding[] = [];
  for (const file of files) {
    readFileSync(file, "utf8").split("\n").forEach((text, index) => {
      for (const { identifier, pattern, plain } of patterns) {
        if (pattern.test(text) || plain.test(text)) {
          findings.push({ field: identifier.field, source: identifier.source, file, line: index + 1 });
          return;
        }
      }
    });
  }
  return findings;
}

/** The findings in words: field, series folder, file:line; never the value. */
export function describeFindings(findings: LogFinding[]): string {
  return findings.map((f) => `${f.field} of ${f.source} found in ${f.file}:${f.line}`).join("\n");
}

/** The .log files under a folder, at any depth. */
export function logFilesUnder(folder: string): string[] {
  if (!existsSync(folder)) return [];
  return readdirSync(folder, { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(".log"))
    .map((name) => path.join(folder, name))
    .sort();
}
