/**
 * The AI algorithm as contributing equipment (PS3.3 C.12.1 SOP Common, Contributing Equipment Sequence (0018,A001)),
 * as the IHE Radiology AI Results (AIR) profile asks of every object an AI algorithm writes: one item per algorithm
 * that names its manufacturer, model, software versions and a Device UID, with a Purpose of Reference saying the
 * equipment is the processing algorithm. The derived CT, the SR and the SEG all carry this same item.
 *
 * Purpose of Reference: AIR (Trial Implementation) wrote the placeholder (Newcode1, 99IHE, "Processing Algorithm")
 * until DICOM had a code. We write the standard code from PS3.16 CID 7005 "Contributing Equipment Purposes of
 * Reference" whose definition fits: (109102, DCM, "Processing Equipment"), equipment that processed composite
 * instances to create new ones, which is what a model run is. Not (109103, DCM, "Modifying Equipment"): that is
 * equipment that changed existing instances without creating new ones (ct-enhance wrote it before issue 16). Not
 * (109100, DCM, "Synthesizing Equipment"): that marks data not acquired from a patient, with SyntheticData. A
 * private 99IHE code would also be refused by a receiver checking CID 7005, which is extensible but lists DCM codes.
 */
import { type CodedConcept, codeSequenceItem } from "./coded-concept.js";
import type { NaturalizedDataset } from "./ct-volume.js";
import { copyAttributes, isPresent } from "./source-attributes.js";
import { deterministicUid } from "./uid.js";
import { formatDT } from "./value-formats.js";

/** PS3.16 CID 7005: equipment that processed composite instances to create new composite instances. */
export const PROCESSING_EQUIPMENT: CodedConcept = { value: "109102", scheme: "DCM", meaning: "Processing Equipment" };

/** PS3.16 CID 7005: the scanner that acquired the source images. */
export const ACQUISITION_EQUIPMENT: CodedConcept = { value: "109101", scheme: "DCM", meaning: "Acquisition Equipment" };

/** The IHE AIR placeholder this replaces (documented here, never written). */
export const IHE_AIR_PROCESSING_ALGORITHM: CodedConcept = { value: "Newcode1", scheme: "99IHE", meaning: "Processing Algorithm" };

/** Who the algorithm is, as equipment: the model (id, version, sha256 of its ONNX file) run by ct-enhance. */
export interface AlgorithmDevice {
  /** "ct-enhance" */
  manufacturer: string;
  /** The manifest's id, e.g. "nodule-detector-small". */
  modelId: string;
  modelVersion: string;
  /** sha256 of the model's ONNX file (hex), as its manifest states and the registry checks. */
  modelSha256: string;
  /** sha256 of the model's other ONNX files (a two-stage detector's candidate classifier), when it has any. */
  companionSha256s?: string[];
  /** ct-enhance's own version. */
  softwareVersion: string;
}

function requireText(device: AlgorithmDevice, key: keyof AlgorithmDevice): void {
  const value = device[key];
  if (typeof value !== "string" || value.trim() === "") throw new RangeError(`algorithm device.${key}: must be a non-empty string`);
}

export function validateAlgorithmDevice(device: AlgorithmDevice): void {
  for (const key of ["manufacturer", "modelId", "modelVersion", "modelSha256", "softwareVersion"] as const) requireText(device, key);
  for (const sha of [device.modelSha256, ...(device.companionSha256s ?? [])]) {
    if (!/^[0-9a-f]{64}$/.test(sha)) throw new RangeError("algorithm device.modelSha256 / companionSha256s: must be 64 lower-case hex digits");
  }
}

/**
 * Device UID (0018,1002) of an algorithm: from its manufacturer, model id, model version and the sha256 of its
 * weights (all its ONNX files), so it is the same on every node and every run of that model, and changes when the
 * model changes, even retrained weights under an unchanged version. ct-enhance's own version is not part of it: the algorithm is the
 * model. The SR's Device Observer UID (TID 1004) is this UID too.
 */
export function algorithmDeviceUid(device: AlgorithmDevice): string {
  validateAlgorithmDevice(device);
  // A model of one file keeps the UID it always had; a second file's weights (the classifier) change it too.
  return deterministicUid(device.manufacturer, "algorithm-device", device.modelId, device.modelVersion, device.modelSha256,
    ...(device.companionSha256s ?? []));
}

/** Software Versions (0018,1020), LO each: the model's version, then ct-enhance's. */
export function algorithmSoftwareVersions(device: AlgorithmDevice): string[] {
  return [device.modelVersion, `${device.manufacturer} ${device.softwareVersion}`].map((v) => v.slice(0, 64));
}

/** The Contributing Equipment item of the algorithm that made an instance. */
export function algorithmContributingEquipment(
  device: AlgorithmDevice,
  contribution: { dateTime: Date; description: string },
): NaturalizedDataset {
  return {
    Manufacturer: device.manufacturer,
    ManufacturerModelName: device.modelId.slice(0, 64),
    SoftwareVersions: algorithmSoftwareVersions(device),
    DeviceUID: algorithmDeviceUid(device),
    PurposeOfReferenceCodeSequence: [codeSequenceItem(PROCESSING_EQUIPMENT)],
    ContributionDateTime: formatDT(contribution.dateTime),
    ContributionDescription: contribution.description.slice(0, 1024),
  };
}

/**
 * Contributing Equipment Sequence of an instance ct-enhance writes from a source series: the scanner that acquired
 * the source (when its header names a Manufacturer), then the algorithm.
 */
export function contributingEquipment(
  source: NaturalizedDataset,
  device: AlgorithmDevice,
  contribution: { dateTime: Date; description: string },
): NaturalizedDataset[] {
  const equipment: NaturalizedDataset[] = [];
  if (isPresent(source.Manufacturer)) {
    const scanner: NaturalizedDataset = { PurposeOfReferenceCodeSequence: [codeSequenceItem(ACQUISITION_EQUIPMENT)] };
    copyAttributes(scanner, source, ["Manufacturer", "ManufacturerModelName", "SoftwareVersions"]);
    equipment.push(scanner);
  }
  equipment.push(algorithmContributingEquipment(device, contribution));
  return equipment;
}
