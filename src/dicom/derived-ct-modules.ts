/**
 * The modules of the derived CT series (CT Image IOD, PS3.3 A.3), built one by one from what the writer is told
 * (DerivedSeriesIdentity) and what the source's headers say. What is copied from the source is named module by
 * module; everything else is ours. The writer (derived-ct.ts) encodes them.
 */
import type { CodedConcept } from "./coded-concept.js";
import type { CtVolume, NaturalizedDataset } from "./ct-volume.js";
import { type AlgorithmDevice, algorithmDeviceUid, contributingEquipment } from "./contributing-equipment.js";
import { SopClass } from "./part10.js";
import { copyAttributes, isPresent } from "./source-attributes.js";
import { formatDA, formatDS, formatTM } from "./value-formats.js";

/** A VOI window a viewer offers as a preset. */
export interface DisplayWindow {
  center: number;
  width: number;
  explanation: string;
}

export interface DerivedSeriesIdentity {
  seriesInstanceUID: string;
  sopInstanceUID(sliceIndex: number): string;
  seriesNumber: number;
  /** LO, at most 64 characters; should say the series is AI-generated and not for diagnostic use. */
  seriesDescription: string;
  /** ST, at most 1024 characters. */
  derivationDescription: string;
  /** The model that made the series; its sha256 (of the ONNX file, as the manifest states) goes into the Device UID. */
  model: { id: string; version: string; name: string; sha256: string };
  software: { manufacturer: string /* "ct-enhance" */; version: string };
  /** Written as ContentDate/Time, SeriesDate/Time, InstanceCreationDate/Time and ContributionDateTime (UTC). */
  contentDate: Date;
  /** Derivation Code Sequence item; default AI_IMAGE_SYNTHESIS. */
  derivation?: CodedConcept;
  /** Window presets; default SOFT_TISSUE_WINDOW. */
  windows?: DisplayWindow[];
  /**
   * Also write SyntheticData (0008,001C) YES. Off by default: the attribute entered PS3.3 in 2022 and dicom3tools
   * 2022-06 (Debian bookworm's dciodvfy) reports it as an unrecognized standard attribute, i.e. an error.
   */
  markSyntheticData?: boolean;
  /** Said in Image Comments after the AI-generated marking: that the output was made past a safeguard, and which. */
  override?: string;
}

/** Purpose of reference for each Source Image Sequence item: PS3.16 CID 7202, DCM 121322. */
export const SOURCE_IMAGE_FOR_PROCESSING: CodedConcept = {
  value: "121322",
  scheme: "DCM",
  meaning: "Source image for image processing operation",
};

/**
 * Our private coding scheme (PS3.3 8.2: private designators start with "99"), described in every instance's
 * Coding Scheme Identification Sequence.
 */
export const CT_ENHANCE_CODING_SCHEME = {
  designator: "99CTENHANCE",
  name: "ct-enhance local codes",
  responsibleOrganization: "ct-enhance",
} as const;

/**
 * Derivation Code Sequence default. PS3.16 CID 7203 "Image Derivation" (extensible) has no concept for an image
 * synthesized or restored by a neural network: its nearest members describe other operations (113076
 * "Segmentation", 113090 "Image stitching", 113087 "Smoothing", 113085 "Spatial resampling"). CID 7203 being
 * extensible, we use a private code rather than a DCM code that would misstate what was done.
 */
export const AI_IMAGE_SYNTHESIS: CodedConcept = {
  value: "AI-SYNTHESIS",
  scheme: CT_ENHANCE_CODING_SCHEME.designator,
  meaning: "Image synthesized by a deep learning model",
};

/** For a denoising model, if one prefers a standard code: PS3.16 CID 7203, DCM 113087 "Smoothing". */
export const SMOOTHING: CodedConcept = { value: "113087", scheme: "DCM", meaning: "Smoothing" };

export const SOFT_TISSUE_WINDOW: DisplayWindow = { center: 40, width: 400, explanation: "SOFT TISSUE" };

/** HU range of the stored pixels (the range CT models are trained on); values outside are clipped. */
export const HU_RANGE = { min: -1024, max: 3071 } as const;

/** General Series (C.7.3.1): ours, but for what describes the patient's position and anatomy. */
export function seriesModule(source: NaturalizedDataset, identity: DerivedSeriesIdentity): NaturalizedDataset {
  const m: NaturalizedDataset = {
    Modality: "CT",
    SeriesInstanceUID: identity.seriesInstanceUID,
    SeriesNumber: identity.seriesNumber,
    SeriesDate: formatDA(identity.contentDate),
    SeriesTime: formatTM(identity.contentDate),
    SeriesDescription: identity.seriesDescription.slice(0, 64),
  };
  copyAttributes(m, source, ["BodyPartExamined", "Laterality"], ["PatientPosition"]);
  // Laterality is type 2C, required for paired body parts; without BodyPartExamined nobody can tell, so a
  // validator asks for it: write it empty (unknown) rather than leave it out.
  if (!isPresent(m.BodyPartExamined) && !isPresent(m.Laterality)) m.Laterality = null;
  return m;
}

/** Frame of Reference (C.7.4.1): the source's, so the derived series overlays its source exactly. */
export function frameOfReferenceModule(source: NaturalizedDataset, volume: CtVolume): NaturalizedDataset {
  const m: NaturalizedDataset = { FrameOfReferenceUID: volume.frameOfReferenceUID };
  copyAttributes(m, source, [], ["PositionReferenceIndicator"]);
  return m;
}

/** General Equipment (C.7.5.1): the equipment that produced these instances is ct-enhance running the model. */
export function equipmentModule(identity: DerivedSeriesIdentity): NaturalizedDataset {
  return {
    Manufacturer: identity.software.manufacturer,
    ManufacturerModelName: identity.model.name.slice(0, 64),
    SoftwareVersions: softwareVersions(identity),
    DeviceUID: algorithmDeviceUid(algorithmDeviceOf(identity)),
  };
}

/** LO values: ct-enhance's version, then the model's id and version. */
function softwareVersions(identity: DerivedSeriesIdentity): string[] {
  return [identity.software.version, `${identity.model.id} ${identity.model.version}`].map((v) => v.slice(0, 64));
}

/** The model run by ct-enhance, as the algorithm equipment that made the series. */
export function algorithmDeviceOf(identity: DerivedSeriesIdentity): AlgorithmDevice {
  return {
    manufacturer: identity.software.manufacturer,
    modelId: identity.model.id,
    modelVersion: identity.model.version,
    modelSha256: identity.model.sha256,
    softwareVersion: identity.software.version,
  };
}

/**
 * SOP Common (C.12.1), shared part: Contributing Equipment (the source's scanner, then the algorithm, as IHE AIR
 * asks: contributing-equipment.ts), coding schemes, character set, synthetic data.
 */
export function sopCommonShared(
  source: NaturalizedDataset,
  identity: DerivedSeriesIdentity,
  anyNonAscii: boolean,
): NaturalizedDataset {
  const equipment = contributingEquipment(source, algorithmDeviceOf(identity), {
    dateTime: identity.contentDate,
    description: identity.derivationDescription,
  });
  const when = identity.contentDate;
  const m: NaturalizedDataset = {
    SOPClassUID: SopClass.CtImage,
    InstanceCreationDate: formatDA(when),
    InstanceCreationTime: formatTM(when),
    ContributingEquipmentSequence: equipment,
    CodingSchemeIdentificationSequence: [
      {
        CodingSchemeDesignator: CT_ENHANCE_CODING_SCHEME.designator,
        CodingSchemeName: CT_ENHANCE_CODING_SCHEME.name,
        CodingSchemeResponsibleOrganization: CT_ENHANCE_CODING_SCHEME.responsibleOrganization,
      },
    ],
  };
  if (identity.markSyntheticData) m.SyntheticData = "YES";
  // dcmjs decodes every string to Unicode and writes UTF-8: a source with a declared character set (dcmjs reports
  // it as ISO_IR 192 once decoded), or any non-ASCII text, is labelled UTF-8.
  if (isPresent(source.SpecificCharacterSet) || anyNonAscii) m.SpecificCharacterSet = "ISO_IR 192";
  copyAttributes(m, source, ["LongitudinalTemporalInformationModified"]);
  return m;
}

/** Contrast/Bolus (C.7.6.4): present only when the source slice says contrast was given. */
export function contrastModule(slice: NaturalizedDataset): NaturalizedDataset {
  const m: NaturalizedDataset = {};
  if (!isPresent(slice.ContrastBolusAgent) && !isPresent(slice.ContrastBolusAgentSequence)) return m;
  copyAttributes(
    m,
    slice,
    [
      "ContrastBolusAgentSequence",
      "ContrastBolusRoute",
      "ContrastBolusVolume",
      "ContrastBolusStartTime",
      "ContrastBolusStopTime",
      "ContrastBolusTotalDose",
      "ContrastFlowRate",
      "ContrastFlowDuration",
      "ContrastBolusIngredient",
      "ContrastBolusIngredientConcentration",
    ],
    ["ContrastBolusAgent"],
  );
  return m;
}

/** Acquisition parameters of the CT Image module (C.8.2.1) that describe the source slice's acquisition. */
export const CT_ACQUISITION_ATTRIBUTES = [
  "ScanOptions",
  "DataCollectionDiameter",
  "ReconstructionDiameter",
  "DistanceSourceToDetector",
  "DistanceSourceToPatient",
  "GantryDetectorTilt",
  "TableHeight",
  "RotationDirection",
  "ExposureTime",
  "XRayTubeCurrent",
  "Exposure",
  "ExposureInuAs",
  "FilterType",
  "GeneratorPower",
  "FocalSpots",
  "ConvolutionKernel",
  "RevolutionTime",
  "SingleCollimationWidth",
  "TotalCollimationWidth",
  "TableSpeed",
  "TableFeedPerRotation",
  "SpiralPitchFactor",
  "CTDIvol",
] as const;

export function windowModule(windows: DisplayWindow[]): NaturalizedDataset {
  return {
    WindowCenter: windows.map((w) => formatDS(w.center)),
    WindowWidth: windows.map((w) => formatDS(w.width)),
    WindowCenterWidthExplanation: windows.map((w) => w.explanation.slice(0, 64)),
  };
}

