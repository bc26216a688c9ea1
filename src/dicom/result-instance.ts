/**
 * What the AI result objects (the TID 1500 SR and the SEG of a detection job) have in common: who the instance is
 * (identity passed in, never made up, so the same input gives the same bytes), and the header every such object in
 * the source's study carries: SOP Common, the source's patient and study (source-attributes.ts), its own series, and
 * the algorithm as the equipment that made it (General and Enhanced General Equipment, and its Contributing Equipment
 * item as IHE AIR asks, with the Device UID that is also the SR's Device Observer UID).
 */
import type { CtVolume, NaturalizedDataset } from "./ct-volume.js";
import { algorithmDeviceUid, algorithmSoftwareVersions, contributingEquipment } from "./contributing-equipment.js";
import { algorithmDevice, type AlgorithmIdentity, type Finding, validateAlgorithmIdentity, validateFindings } from "./finding.js";
import { patientAndStudyOf } from "./source-attributes.js";
import { formatDA, formatTM, isUid } from "./value-formats.js";

/** Who an SR or SEG instance is. */
export interface ResultInstanceIdentity {
  seriesInstanceUID: string;
  sopInstanceUID: string;
  seriesNumber: number;
  /** Default 1. */
  instanceNumber?: number;
  /** Default: the object's own, which says it is AI-generated and not for diagnostic use. */
  seriesDescription?: string;
  /** Content, Series and Instance Creation Date/Time, written in UTC with Timezone Offset From UTC +0000. */
  contentDate: Date;
}

/** What kind of result object: its SOP class, modality and default series description. */
export interface ResultObjectKind {
  sopClassUID: string;
  modality: "SR" | "SEG";
  seriesDescription: string;
}

/**
 * A derived series' description must say it is not for diagnostic use (DESIGN.md, "What a derived series must be");
 * undefined means the writer's default, which does.
 */
export function validateSeriesDescription(description: string | undefined, argument = "identity.seriesDescription"): void {
  if (description === undefined) return;
  if (description.length > 64) throw new RangeError(`${argument}: longer than 64 characters (LO)`);
  if (!/not for diagnostic use/i.test(description)) throw new RangeError(`${argument}: must say "NOT FOR DIAGNOSTIC USE"`);
}

/** Checks the identity against the source volume; throws a RangeError naming the bad field. */
export function validateResultIdentity(identity: ResultInstanceIdentity, volume: CtVolume): void {
  if (!identity) throw new RangeError("identity: is required");
  for (const key of ["seriesInstanceUID", "sopInstanceUID"] as const) {
    if (!isUid(identity[key])) throw new RangeError(`identity.${key}: is not a UID`);
  }
  if (identity.seriesInstanceUID === volume.seriesInstanceUID) {
    throw new RangeError("identity.seriesInstanceUID: must be a new series, not the source series");
  }
  if (!Number.isInteger(identity.seriesNumber) || identity.seriesNumber < 0) {
    throw new RangeError("identity.seriesNumber: must be a non-negative integer");
  }
  if (identity.instanceNumber !== undefined && (!Number.isInteger(identity.instanceNumber) || identity.instanceNumber < 1)) {
    throw new RangeError("identity.instanceNumber: must be a positive integer");
  }
  validateSeriesDescription(identity.seriesDescription);
  if (!(identity.contentDate instanceof Date) || Number.isNaN(identity.contentDate.getTime())) {
    throw new RangeError("identity.contentDate: must be a valid Date");
  }
}

/** What every result object is written from, checked: findings in the volume, the algorithm, the identity. */
export function validateResultInput(input: {
  volume: CtVolume;
  findings: readonly Finding[];
  algorithm: AlgorithmIdentity;
  identity: ResultInstanceIdentity;
}): void {
  validateFindings(input.findings, input.volume);
  validateAlgorithmIdentity(input.algorithm);
  validateResultIdentity(input.identity, input.volume);
}

/** The header shared by SR and SEG: SOP Common, patient and study, the result's series, equipment, content time. */
export function resultInstanceHeader(
  kind: ResultObjectKind,
  volume: CtVolume,
  identity: ResultInstanceIdentity,
  algorithm: AlgorithmIdentity,
): NaturalizedDataset {
  const date = formatDA(identity.contentDate);
  const time = formatTM(identity.contentDate);
  const device = algorithmDevice(algorithm);
  const deviceUid = algorithmDeviceUid(device);
  const source = volume.sliceHeaders[0] ?? {};
  const description = `${kind.modality} of AI-generated findings by ${algorithm.name} (model ${algorithm.modelId} ` +
    `${algorithm.modelVersion}) in ${algorithm.manufacturer} ${algorithm.version}; not for diagnostic use`;
  return {
    SpecificCharacterSet: "ISO_IR 192",
    InstanceCreationDate: date,
    InstanceCreationTime: time,
    TimezoneOffsetFromUTC: "+0000",
    SOPClassUID: kind.sopClassUID,
    SOPInstanceUID: identity.sopInstanceUID,
    ...patientAndStudyOf(volume.sliceHeaders[0], volume.studyInstanceUID),
    Modality: kind.modality,
    SeriesInstanceUID: identity.seriesInstanceUID,
    SeriesNumber: identity.seriesNumber,
    SeriesDate: date,
    SeriesTime: time,
    SeriesDescription: identity.seriesDescription ?? kind.seriesDescription,
    // General and Enhanced General Equipment: the algorithm is the device, named as in its Contributing Equipment item
    Manufacturer: algorithm.manufacturer,
    ManufacturerModelName: algorithm.modelId.slice(0, 64),
    DeviceSerialNumber: deviceUid,
    DeviceUID: deviceUid,
    SoftwareVersions: algorithmSoftwareVersions(device),
    InstanceNumber: identity.instanceNumber ?? 1,
    ContentDate: date,
    ContentTime: time,
    // SOP Common: the source's scanner, then the algorithm (IHE AIR: one item per algorithm)
    ContributingEquipmentSequence: contributingEquipment(source, device, { dateTime: identity.contentDate, description }),
  };
}
