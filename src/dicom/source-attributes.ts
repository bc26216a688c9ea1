/**
 * What a new object in the source's study copies from the source series, in one place for every writer (derived CT,
 * SR, SEG): the Patient module (PS3.3 C.7.1.1, de-identification attributes included, so an output of a
 * de-identified series says it is de-identified too), Patient Study (C.7.2.2) and General Study (C.7.2.1). The study
 * UID itself is the volume's. Type 2 attributes the source lacks are written empty; DS values are re-formatted to
 * 16 characters, since the source's own may not be valid.
 */
import type { NaturalizedDataset } from "./ct-volume.js";
import { formatDS } from "./value-formats.js";

/** Copied when the source has them; the type 2 ones are written empty when it does not. */
export const PATIENT_STUDY_ATTRIBUTES = {
  type2: [
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
    "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
  ],
  optional: [
    "IssuerOfPatientID", "PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence",
    "PatientAge", "PatientSize", "PatientWeight", "StudyDescription",
  ],
} as const;

/** DS keywords among those any writer copies: their numbers are re-formatted to 16 characters at most. */
const DECIMAL_STRING = new Set([
  "PatientSize", "PatientWeight", "SliceThickness", "SliceLocation", "KVP", "DataCollectionDiameter",
  "ReconstructionDiameter", "DistanceSourceToDetector", "DistanceSourceToPatient", "GantryDetectorTilt", "TableHeight",
  "FocalSpots", "ContrastBolusVolume", "ContrastBolusTotalDose", "ContrastFlowRate", "ContrastFlowDuration",
  "ContrastBolusIngredientConcentration",
]);

export const isPresent = (v: unknown): boolean => v !== undefined && v !== null && v !== "" && !(Array.isArray(v) && v.length === 0);

function asCopied(keyword: string, value: unknown): unknown {
  if (!DECIMAL_STRING.has(keyword)) return value;
  if (typeof value === "number") return formatDS(value);
  return Array.isArray(value) ? value.map((v) => (typeof v === "number" ? formatDS(v) : v)) : value;
}

/**
 * Copies into `target` the attributes present (and not empty) in `source`; type 2 ones absent there are written
 * empty. Values are shared, not cloned: dcmjs gives PN values accessor methods that structuredClone refuses, and
 * nothing mutates them.
 */
export function copyAttributes(
  target: NaturalizedDataset,
  source: NaturalizedDataset,
  optional: readonly string[],
  type2: readonly string[] = [],
): void {
  for (const keyword of [...type2, ...optional]) {
    const value = source[keyword];
    if (isPresent(value)) target[keyword] = asCopied(keyword, value);
    else if (type2.includes(keyword)) target[keyword] = null;
  }
}

/** The patient and study of the source series (its first slice's header), for a new object in that study. */
export function patientAndStudyOf(header: NaturalizedDataset | undefined, studyInstanceUID: string): NaturalizedDataset {
  if (!header || typeof header !== "object") throw new RangeError("volume.sliceHeaders[0]: the source header is required");
  const out: NaturalizedDataset = { StudyInstanceUID: studyInstanceUID };
  copyAttributes(out, header, PATIENT_STUDY_ATTRIBUTES.optional, PATIENT_STUDY_ATTRIBUTES.type2);
  return out;
}
