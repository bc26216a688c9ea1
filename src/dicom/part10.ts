/**
 * DICOM Part-10 files as ct-enhance writes them (PS3.10 7.1): the 128-byte preamble, "DICM", the File Meta
 * Information (group 0002) and the dataset, always Explicit VR Little Endian. One Implementation Class UID for every
 * file this software writes, and an Implementation Version Name that says which release wrote it (PS3.7 D.3.3.2).
 * Every writer goes through here: the derived CT (which splices its own pre-encoded elements after part10Header),
 * the SR, the SEG and the demo's InVesalius conversion.
 */
import { data } from "dcmjs";
import { SOFTWARE_VERSION } from "../version.js";
import type { NaturalizedDataset } from "./ct-volume.js";
import { deterministicUid } from "./uid.js";

export const EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1";

/** The SOP classes ct-enhance reads and writes (PS3.4 B.5). */
export const SopClass = {
  CtImage: "1.2.840.10008.5.1.4.1.1.2",
  Segmentation: "1.2.840.10008.5.1.4.1.1.66.4",
  Comprehensive3dSr: "1.2.840.10008.5.1.4.1.1.88.34",
} as const;

/** Identifies ct-enhance as the implementation that wrote a file; the same in every release. */
export const IMPLEMENTATION_CLASS_UID = deterministicUid("ct-enhance", "ImplementationClassUID", 1);
/** SH, 16 characters at most: "CT_ENHANCE_" and the release. */
export const IMPLEMENTATION_VERSION_NAME = `CT_ENHANCE_${SOFTWARE_VERSION}`.slice(0, 16);

function fileMetaInformation(sopClassUID: string, sopInstanceUID: string): data.DicomDataset {
  return data.DicomMetaDictionary.denaturalizeDataset({
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: sopClassUID,
    MediaStorageSOPInstanceUID: sopInstanceUID,
    TransferSyntaxUID: EXPLICIT_VR_LITTLE_ENDIAN,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: IMPLEMENTATION_VERSION_NAME,
  });
}

/** Preamble, "DICM" and the File Meta Information: what precedes a dataset its writer encodes itself. */
export function part10Header(sopClassUID: string, sopInstanceUID: string): Uint8Array {
  const header = new data.DicomDict(fileMetaInformation(sopClassUID, sopInstanceUID));
  header.dict = {};
  return new Uint8Array(header.write());
}

/**
 * A naturalized dataset as a whole Part-10 file, encoded by dcmjs. Its own SOPClassUID and SOPInstanceUID go into
 * the file meta information. `_vrMap` may name VRs the dictionary leaves open (PixelData: OB or OW).
 */
export function writePart10(dataset: NaturalizedDataset & { _vrMap?: Record<string, string> }): Uint8Array {
  const { SOPClassUID: sopClassUID, SOPInstanceUID: sopInstanceUID } = dataset;
  if (typeof sopClassUID !== "string" || typeof sopInstanceUID !== "string") {
    throw new RangeError("writePart10: dataset.SOPClassUID and dataset.SOPInstanceUID are required");
  }
  const dict = new data.DicomDict(fileMetaInformation(sopClassUID, sopInstanceUID));
  dict.dict = data.DicomMetaDictionary.denaturalizeDataset(dataset);
  return new Uint8Array(dict.write({ allowInvalidVRLength: false }));
}
