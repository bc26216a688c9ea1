/**
 * What the SR and SEG writers share: value formatting for the VRs dcmjs leaves to us (DS, DA, TM), the patient and
 * study attributes copied from the source series, and Part-10 encoding (Explicit VR Little Endian) through dcmjs.
 */
import { data } from "dcmjs";
import type { NaturalizedDataset } from "../ct-volume.js";
import { deterministicUid } from "../uid.js";

export const EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1";
/** Identifies the software that wrote a Part-10 file (PS3.7 D.3.3.2); fixed per implementation. */
export const IMPLEMENTATION_CLASS_UID = deterministicUid("ct-enhance", "ImplementationClassUID", 1);
export const IMPLEMENTATION_VERSION_NAME = "CT_ENHANCE_1";

export { formatDA, formatDS, formatTM, isUid } from "../value-formats.js";

/**
 * A derived series' description must say it is not for diagnostic use (DESIGN.md, "What a derived series must be");
 * undefined means the writer's default, which does.
 */
export function validateSeriesDescription(description: string | undefined, argument = "identity.seriesDescription"): void {
  if (description === undefined) return;
  if (description.length > 64) throw new RangeError(`${argument}: longer than 64 characters (LO)`);
  if (!/not for diagnostic use/i.test(description)) throw new RangeError(`${argument}: must say "NOT FOR DIAGNOSTIC USE"`);
}

/** Patient, Patient Study and General Study module attributes that a derived object copies from its source. */
const COPIED_FROM_SOURCE = [
  "PatientName",
  "PatientID",
  "IssuerOfPatientID",
  "PatientBirthDate",
  "PatientSex",
  "PatientAge",
  "PatientSize",
  "PatientWeight",
  "StudyInstanceUID",
  "StudyDate",
  "StudyTime",
  "StudyID",
  "AccessionNumber",
  "ReferringPhysicianName",
  "StudyDescription",
] as const;

/** Type 2 attributes among them: present, empty when the source lacks them. */
const TYPE_2 = new Set<string>([
  "PatientName",
  "PatientID",
  "PatientBirthDate",
  "PatientSex",
  "StudyDate",
  "StudyTime",
  "StudyID",
  "AccessionNumber",
  "ReferringPhysicianName",
]);

/** The patient and study identity of the source series (its first slice's header), for a new series in that study. */
export function patientAndStudyFrom(header: NaturalizedDataset | undefined, argument = "volume.sliceHeaders[0]"): NaturalizedDataset {
  if (!header || typeof header !== "object") throw new RangeError(`${argument}: the source header is required`);
  if (typeof header.StudyInstanceUID !== "string" || header.StudyInstanceUID === "") {
    throw new RangeError(`${argument}.StudyInstanceUID: is required`);
  }
  const out: NaturalizedDataset = {};
  for (const keyword of COPIED_FROM_SOURCE) {
    const value = header[keyword];
    // Shared, not cloned: dcmjs gives PN values accessor methods that structuredClone refuses; nothing mutates them.
    if (value !== undefined && value !== null && value !== "") out[keyword] = value;
    else if (TYPE_2.has(keyword)) out[keyword] = "";
  }
  return out;
}

/**
 * Encodes a naturalized dataset as a DICOM Part-10 file in Explicit VR Little Endian. The dataset's own
 * SOPClassUID and SOPInstanceUID go into the file meta information. `_vrMap` may name VRs the dictionary leaves
 * open (PixelData: OB).
 */
export function writePart10(dataset: NaturalizedDataset & { _vrMap?: Record<string, string> }): Uint8Array {
  const sopClassUID = dataset.SOPClassUID;
  const sopInstanceUID = dataset.SOPInstanceUID;
  if (typeof sopClassUID !== "string" || typeof sopInstanceUID !== "string") {
    throw new RangeError("writePart10: dataset.SOPClassUID and dataset.SOPInstanceUID are required");
  }
  const meta = data.DicomMetaDictionary.denaturalizeDataset({
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: sopClassUID,
    MediaStorageSOPInstanceUID: sopInstanceUID,
    TransferSyntaxUID: EXPLICIT_VR_LITTLE_ENDIAN,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: IMPLEMENTATION_VERSION_NAME,
  });
  const dict = new data.DicomDict(meta);
  dict.dict = data.DicomMetaDictionary.denaturalizeDataset(dataset);
  return new Uint8Array(dict.write({ allowInvalidVRLength: false }));
}
