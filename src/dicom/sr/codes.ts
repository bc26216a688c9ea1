/**
 * Code triplets the SR and SEG writers use, each with where the standard puts it. Meanings are written as PS3.16
 * (DCM: Annex D; SCT: the context groups that cite them) spells them; checked against PS3.16 and highdicom.
 * "DCM" = DICOM Controlled Terminology, "SCT" = SNOMED CT, "UCUM" = Unified Code for Units of Measure.
 */
import type { CodedConcept } from "../finding.js";

const code = (value: string, scheme: string, meaning: string): CodedConcept => Object.freeze({ value, scheme, meaning });

// --- Document structure: TID 1500 Measurement Report and TID 1600 Image Library ---
/** TID 1500 row 1: document title (CID 7021 Measurement Report Document Title). */
export const IMAGING_MEASUREMENT_REPORT = code("126000", "DCM", "Imaging Measurement Report");
/** TID 1204 row 1: Language of Content Item and Descendants. */
export const LANGUAGE_OF_CONTENT_ITEM_AND_DESCENDANTS = code("121049", "DCM", "Language of Content Item and Descendants");
/** CID 5000 Language: RFC 5646 tag for English as used in the United States. */
export const LANGUAGE_ENGLISH_US = code("en-US", "RFC5646", "English (United States)");
/** TID 1500 row 4: Procedure reported (value from BCID 100 Quantitative Diagnostic Imaging Procedure). */
export const PROCEDURE_REPORTED = code("121058", "DCM", "Procedure reported");
/** Default procedure reported for chest CT detection: SNOMED CT "CT of chest". */
export const CT_OF_CHEST = code("169069000", "SCT", "CT of chest");
/** TID 1600 row 1: Image Library. */
export const IMAGE_LIBRARY = code("111028", "DCM", "Image Library");
/** TID 1600 row 2: Image Library Group (OHIF reads the library's images from inside this container). */
export const IMAGE_LIBRARY_GROUP = code("126200", "DCM", "Image Library Group");
/** TID 1500 row 6: Imaging Measurements. */
export const IMAGING_MEASUREMENTS = code("126010", "DCM", "Imaging Measurements");
/** TID 1410 / 1411 / 1501 row 1: Measurement Group. */
export const MEASUREMENT_GROUP = code("125007", "DCM", "Measurement Group");

// --- Observation context: TID 1002 Observer Context, TID 1004 Device Observer Identifying Attributes ---
/** TID 1002 row 1: Observer Type (CID 270). */
export const OBSERVER_TYPE = code("121005", "DCM", "Observer Type");
/** CID 270 Observer Type: Device. */
export const DEVICE = code("121007", "DCM", "Device");
/** TID 1004 row 1. */
export const DEVICE_OBSERVER_UID = code("121012", "DCM", "Device Observer UID");
/** TID 1004 row 2. */
export const DEVICE_OBSERVER_NAME = code("121013", "DCM", "Device Observer Name");
/** TID 1004 row 3. */
export const DEVICE_OBSERVER_MANUFACTURER = code("121014", "DCM", "Device Observer Manufacturer");
/** TID 1004 row 4. */
export const DEVICE_OBSERVER_MODEL_NAME = code("121015", "DCM", "Device Observer Model Name");

// --- Measurement groups: TID 1410 Planar ROI, TID 1411 Volumetric ROI, TID 1501, TID 4019 ---
/** TID 4108 / TID 1410, 1411, 1501 row 2: Tracking Identifier (human readable). */
export const TRACKING_IDENTIFIER = code("112039", "DCM", "Tracking Identifier");
/** TID 1410, 1411, 1501 row 3: Tracking Unique Identifier. */
export const TRACKING_UNIQUE_IDENTIFIER = code("112040", "DCM", "Tracking Unique Identifier");
/** TID 1410, 1411, 1501: Finding (the value says what, e.g. Nodule). */
export const FINDING = code("121071", "DCM", "Finding");
/** TID 1410, 1411, 1501: Finding Site. */
export const FINDING_SITE = code("363698007", "SCT", "Finding Site");
/** TID 4019 row 1. */
export const ALGORITHM_NAME = code("111001", "DCM", "Algorithm Name");
/** TID 4019 row 2. */
export const ALGORITHM_VERSION = code("111003", "DCM", "Algorithm Version");
/** TID 4019 row 3. */
export const ALGORITHM_PARAMETERS = code("111002", "DCM", "Algorithm Parameters");
/** TID 1411: Referenced Segment (IMAGE reference to one segment of a SEG instance). */
export const REFERENCED_SEGMENT = code("121191", "DCM", "Referenced Segment");
/** TID 1411: Source series for segmentation (UIDREF). */
export const SOURCE_SERIES_FOR_SEGMENTATION = code("121232", "DCM", "Source Series for Segmentation");
/**
 * Comment (DCM 121106), a TEXT the Cornerstone3D SR adapters write for an annotation's label and read back as it;
 * the long-axis group gives the finding's name with it (TID 1410 is extensible).
 */
export const COMMENT = code("121106", "DCM", "Comment");
/** TID 1410: Image Region (SCOORD / SCOORD3D). */
export const IMAGE_REGION = code("111030", "DCM", "Image Region");

// --- Measurements (TID 1419 ROI Measurements, $Measurement from BCID 7469 Generic Intensity and Size Measurement) ---
/** CID 7470 Linear Measurement: the longest diameter of the lesion. */
export const LONG_AXIS = code("103339001", "SCT", "Long Axis");
/** CID 7469: Volume. */
export const VOLUME = code("118565006", "SCT", "Volume");
/**
 * The CAD templates' detection confidence (e.g. TID 4127 row 8: NUM "Certainty of Finding", UNITS = %, 0-100).
 * Used for the model's probability, scaled to percent.
 */
export const CERTAINTY_OF_FINDING = code("111012", "DCM", "Certainty of Finding");

// --- Units (UCUM, CID 7181 / CID 7460-7462) ---
export const UCUM_MILLIMETER = code("mm", "UCUM", "millimeter");
export const UCUM_CUBIC_MILLIMETER = code("mm3", "UCUM", "cubic millimeter");
/** As TID 4127 row 8 writes it: EV (%, UCUM, "Percent"). */
export const UCUM_PERCENT = code("%", "UCUM", "Percent");

// --- Finding vocabulary (SNOMED CT) ---
/** Morphologic abnormality: Nodule. */
export const NODULE = code("27925004", "SCT", "Nodule");
/** Morphologic abnormality: Mass. */
export const MASS = code("4147007", "SCT", "Mass");
/** Morphologic abnormality: Lesion. */
export const LESION = code("52988006", "SCT", "Lesion");
/** Body structure: Lung. */
export const LUNG = code("39607008", "SCT", "Lung");
/** CID 240 Present-Absent: Absent (a qualitative evaluation "Nodule = Absent" when nothing was found). */
export const ABSENT = code("2667000", "SCT", "Absent");

// --- Segmentation (PS3.3 C.8.20 and the SEG functional groups) ---
/** CID 7150 Segmentation Property Category: for lesions, nodules, masses. */
export const MORPHOLOGICALLY_ABNORMAL_STRUCTURE = code("49755003", "SCT", "Morphologically Abnormal Structure");
/** CID 7202 Source Image Purpose of Reference, for each SEG frame's source slice. */
export const SOURCE_IMAGE_FOR_IMAGE_PROCESSING_OPERATION = code(
  "121322",
  "DCM",
  "Source image for image processing operation",
);
/** CID 7162 Surface Processing Algorithm Families: the SEG Segmentation Algorithm Identification's family for a neural network. */
export const ARTIFICIAL_INTELLIGENCE = code("123110", "DCM", "Artificial Intelligence");
/** CID 7203 Image Derivation: Segmentation. */
export const SEGMENTATION_DERIVATION = code("113076", "DCM", "Segmentation");

/** Content Template Sequence identifiers (Mapping Resource DCMR). */
export const TEMPLATE = {
  measurementReport: "1500",
  imageLibrary: "1600",
  planarRoi: "1410",
  volumetricRoi: "1411",
  measurementGroup: "1501",
} as const;
