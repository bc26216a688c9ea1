/**
 * What a detection model found in a CT volume, in the terms the DICOM writers need: a coded finding at a coded
 * site, where it is (patient coordinates and a voxel mask), how big it is and how sure the model is. The SR
 * (src/dicom/sr/) and the SEG (src/dicom/seg.ts) are both written from a list of these.
 */
import type { CodedConcept } from "./coded-concept.js";
import type { AlgorithmDevice } from "./contributing-equipment.js";
import type { CtVolume } from "./ct-volume.js";
import { isUid } from "./value-formats.js";

export type { CodedConcept };

export interface Finding {
  /** Human-readable tracking identifier, e.g. "Nodule 1" (SR 112039, SEG Tracking ID). */
  trackingId: string;
  /** Tracking unique identifier (SR 112040, SEG Tracking UID); deterministic, from uid.ts. */
  trackingUid: string;
  /** What was found, e.g. (27925004, SCT, "Nodule"). */
  findingCode: CodedConcept;
  /** Where, e.g. (39607008, SCT, "Lung"). */
  findingSiteCode: CodedConcept;
  /** Centroid in the patient coordinate system (LPS, mm), in the source Frame of Reference. */
  centroidPatientMm: [number, number, number];
  /** Voxel mask of the finding: slice indices into the volume and, per slice, in-plane pixel indices (row*columns+col). */
  mask: { slice: number; pixels: number[] }[];
  /**
   * The long axis of the mask in mm (long-axis.ts: in-plane, on the slice where the finding is largest), as the
   * detector measures it. The SR measures the same axis from `mask` and draws it, so it reports this figure.
   */
  longestDiameterMm: number;
  volumeMm3: number;
  /** Model's confidence that the finding is real, 0..1. */
  probability: number;
}

/**
 * The algorithm that produced the findings (TID 4019 Algorithm Identification, device observer, SEG algorithm,
 * Contributing Equipment). The algorithm is the model: its name, id, version and weights identify it; ct-enhance,
 * which runs it, is its manufacturer and says its own version beside.
 */
export interface AlgorithmIdentity {
  /** The model's human-readable name (manifest `name`): TID 4019 Algorithm Name. */
  name: string;
  /** ct-enhance's version. */
  version: string;
  modelId: string;
  /** TID 4019 Algorithm Version, SEG Algorithm Version. */
  modelVersion: string;
  /** sha256 of the model's ONNX file (hex): part of the Device UID, which changes when the model changes. */
  modelSha256: string;
  /** sha256 of the model's other ONNX files (a two-stage detector's candidate classifier): in the Device UID too. */
  companionSha256s?: string[];
  manufacturer: "ct-enhance";
  /**
   * What qualifies every statement the algorithm makes, written as further TID 4019 Algorithm Parameters: its scope
   * ("solid nodules of 3-30 mm inside the lungs"), its threshold, and any safeguard a person overrode.
   */
  parameters?: string[];
}

function fail(argument: string, why: string): never {
  throw new RangeError(`${argument}: ${why}`);
}

function isFiniteNumber(x: unknown): x is number {
  return typeof x === "number" && Number.isFinite(x);
}

export function validateCodedConcept(code: CodedConcept, argument: string): void {
  if (!code || typeof code !== "object") fail(argument, "must be a coded concept {value, scheme, meaning}");
  for (const key of ["value", "scheme", "meaning"] as const) {
    if (typeof code[key] !== "string" || code[key].trim() === "") fail(`${argument}.${key}`, "must be a non-empty string");
  }
  if (code.value.length > 16 && code.scheme !== "UCUM") fail(`${argument}.value`, "longer than 16 characters (SH)");
  if (code.meaning.length > 64) fail(`${argument}.meaning`, "longer than 64 characters (LO)");
}

export function validateAlgorithmIdentity(algorithm: AlgorithmIdentity, argument = "algorithm"): void {
  if (!algorithm || typeof algorithm !== "object") fail(argument, "is required");
  for (const key of ["name", "version", "modelId", "modelVersion", "modelSha256", "manufacturer"] as const) {
    if (typeof algorithm[key] !== "string" || algorithm[key].trim() === "") fail(`${argument}.${key}`, "must be a non-empty string");
  }
  if (!/^[0-9a-f]{64}$/.test(algorithm.modelSha256)) fail(`${argument}.modelSha256`, "must be 64 lower-case hex digits");
}

/** The algorithm as contributing equipment (contributing-equipment.ts). */
export function algorithmDevice(algorithm: AlgorithmIdentity): AlgorithmDevice {
  return {
    manufacturer: algorithm.manufacturer,
    modelId: algorithm.modelId,
    modelVersion: algorithm.modelVersion,
    modelSha256: algorithm.modelSha256,
    ...(algorithm.companionSha256s?.length ? { companionSha256s: algorithm.companionSha256s } : {}),
    softwareVersion: algorithm.version,
  };
}

/**
 * Checks every finding against the volume it was found in; throws a RangeError naming the first bad field
 * (e.g. "findings[1].mask[0].slice: 12 is outside the volume's 8 slices").
 */
export function validateFindings(findings: readonly Finding[], volume: CtVolume, argument = "findings"): void {
  if (!Array.isArray(findings)) fail(argument, "must be an array");
  const trackingUids = new Set<string>();
  const pixelsPerSlice = volume.rows * volume.columns;
  findings.forEach((f, i) => {
    const at = `${argument}[${i}]`;
    if (typeof f.trackingId !== "string" || f.trackingId.trim() === "") fail(`${at}.trackingId`, "must be a non-empty string");
    if (f.trackingId.length > 64) fail(`${at}.trackingId`, "longer than 64 characters (LO)");
    if (!isUid(f.trackingUid)) {
      fail(`${at}.trackingUid`, `"${String(f.trackingUid)}" is not a UID`);
    }
    if (trackingUids.has(f.trackingUid)) fail(`${at}.trackingUid`, "is used by another finding");
    trackingUids.add(f.trackingUid);
    validateCodedConcept(f.findingCode, `${at}.findingCode`);
    validateCodedConcept(f.findingSiteCode, `${at}.findingSiteCode`);
    if (!Array.isArray(f.centroidPatientMm) || f.centroidPatientMm.length !== 3 || !f.centroidPatientMm.every(isFiniteNumber)) {
      fail(`${at}.centroidPatientMm`, "must be three finite numbers");
    }
    if (!isFiniteNumber(f.longestDiameterMm) || f.longestDiameterMm < 0) fail(`${at}.longestDiameterMm`, "must be a finite number >= 0");
    if (!isFiniteNumber(f.volumeMm3) || f.volumeMm3 < 0) fail(`${at}.volumeMm3`, "must be a finite number >= 0");
    if (!isFiniteNumber(f.probability) || f.probability < 0 || f.probability > 1) fail(`${at}.probability`, "must be in [0, 1]");
    if (!Array.isArray(f.mask) || f.mask.length === 0) fail(`${at}.mask`, "must list at least one slice");
    const slices = new Set<number>();
    f.mask.forEach((m: Finding["mask"][number], j: number) => {
      if (!Number.isInteger(m.slice) || m.slice < 0 || m.slice >= volume.slices) {
        fail(`${at}.mask[${j}].slice`, `${m.slice} is outside the volume's ${volume.slices} slices`);
      }
      if (slices.has(m.slice)) fail(`${at}.mask[${j}].slice`, `slice ${m.slice} is listed twice`);
      slices.add(m.slice);
      if (!Array.isArray(m.pixels) || m.pixels.length === 0) fail(`${at}.mask[${j}].pixels`, "must list at least one pixel");
      for (const p of m.pixels) {
        if (!Number.isInteger(p) || p < 0 || p >= pixelsPerSlice) {
          fail(`${at}.mask[${j}].pixels`, `${p} is outside a ${volume.rows}x${volume.columns} slice`);
        }
      }
    });
  });
}
