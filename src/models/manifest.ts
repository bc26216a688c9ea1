/**
 * A model is an .onnx file plus a manifest (models/<id>.json) that says everything the pipeline needs to run it
 * without code: tensor names, how many neighbouring slices it sees, how HU maps to the network's range, what its
 * output means. A researcher's exported generator (CTA-GAN, RegGAN, a denoiser) drops in with a manifest alone.
 */
import { z } from "zod";

export const ModelTask = z.enum(["synthesis", "denoise", "detection"]);
export type ModelTask = z.infer<typeof ModelTask>;

/** What the network's output channel holds, per slice. */
export const OutputMeaning = z.enum([
  /** An image in the same normalised range as the input; mapped back to HU with the inverse of `intensity`. */
  "hu-image",
  /** Per-pixel lesion probability in [0, 1] (detection models). */
  "probability-map",
]);
export type OutputMeaning = z.infer<typeof OutputMeaning>;

const CodedConcept = z.object({ value: z.string().min(1), scheme: z.string().min(1), meaning: z.string().min(1) });

/** A closed or half-open range; at least one end. */
const Range = z.object({ min: z.number().optional(), max: z.number().optional() }).strict()
  .refine((r) => r.min !== undefined || r.max !== undefined, "give min, max or both");
export type Range = z.infer<typeof Range>;

/**
 * Where a model may run: what the series must be and show. Judged on the anatomy the probe measures in the volume
 * (src/measure/), not only on headers; a model never writes output on anatomy it was not made for.
 */
export const IntendedUse = z.object({
  /** In words, for the model card, the API and skip reasons: "non-contrast chest CT of adults". */
  description: z.string().min(1),
  modality: z.literal("CT"),
  /** Body regions the model was made for; the volume must show one (head above the lungs, chest, abdomen below). */
  regions: z.array(z.enum(["head", "chest", "abdomen"])).min(1),
  /** The lungs the volume must show, when the model reads them: their volume, both sides, apex and base inside. */
  lungs: z.object({
    minVolumeMl: z.number().positive(),
    bothSides: z.boolean().default(true),
    apexToBase: z.boolean().default(true),
  }).strict().optional(),
  /**
   * A volume covering more than the model's regions (a whole-body scan under a chest model) is processed on the
   * slab of those regions only, this much beyond them each way, mm; the output covers that slab.
   */
  slabMarginMm: z.number().nonnegative().default(20),
  /** SliceThickness (else the slice spacing), mm. */
  sliceThicknessMm: Range,
  /** In-plane pixel spacing, mm (both directions). */
  pixelSpacingMm: Range,
  /** Rows and columns. */
  matrix: Range,
  /** Measured contrast state the model is for (the blood pool's HU); the header decides only when the image cannot. */
  contrast: z.enum(["non-contrast", "contrast", "any"]),
  kvp: Range.optional(),
  /**
   * Dose: the series must be low-dose, by its CTDIvol (at most this, mGy) or, when the header has none, by the noise
   * the probe measures (HU, at least `min`; above `max` it is a sharp kernel rather than a low dose).
   */
  lowDose: z.object({ ctdiVolMaxMgy: z.number().positive(), noiseHu: Range }).strict().optional(),
}).strict();
export type IntendedUse = z.infer<typeof IntendedUse>;

/**
 * What a model's output must satisfy before the PACS sees it, measured on the volume in memory. Each check names a
 * measure and its limits; the measures are defined in src/measure/output-measures.ts.
 */
export const OutputCheck = z.discriminatedUnion("measure", [
  z.object({
    /** Share of body voxels whose HU changed by more than `overHu`, percent. */
    measure: z.literal("bodyVoxelsChangedPercent"),
    overHu: z.number().positive(),
    max: z.number().min(0).max(100),
  }).strict(),
  z.object({
    /** Mean HU change of soft tissue (-20..120 HU in the input) outside the blood pool (mediastinum, aorta). */
    measure: z.literal("tissueMeanChangeHu"),
    min: z.number(),
    max: z.number(),
  }).strict(),
  z.object({
    /**
     * Share of that soft tissue brightened by more than `overHu`, percent: a local false enhancement (a blob in the
     * liver, a muscle, a kidney) that a mean over all tissue hides.
     */
    measure: z.literal("tissueBrightenedPercent"),
    overHu: z.number().positive(),
    max: z.number().min(0).max(100),
  }).strict(),
  z.object({
    /**
     * The largest area of that soft tissue brightened by more than `overHu` on any one slice, cm2: a false
     * enhancement a few centimetres tall (an organ beside the aorta lit like the heart) that a share of the whole
     * volume dilutes.
     */
    measure: z.literal("tissueBrightenedSliceCm2"),
    overHu: z.number().positive(),
    max: z.number().positive(),
  }).strict(),
  z.object({
    /**
     * The volume of the largest connected region (3D, face-connected) of that soft tissue brightened by more than
     * `overHu`, ml: a false enhancement under the per-slice area on every slice that runs down many slices (a muscle
     * of the shoulder girdle lit along its length).
     */
    measure: z.literal("tissueBrightenedRegionMl"),
    overHu: z.number().positive(),
    max: z.number().positive(),
  }).strict(),
  z.object({
    /** Measured noise of the output over that of the input (below 1: the noise went down). */
    measure: z.literal("noiseRatio"),
    max: z.number().positive(),
  }).strict(),
  z.object({
    /** Findings inside the lungs; reaching `max` means the model misfired, not that there are that many. */
    measure: z.literal("findings"),
    max: z.number().int().positive(),
  }).strict(),
]);
export type OutputCheck = z.infer<typeof OutputCheck>;

/**
 * The noise-level input of a denoiser that takes one (FFDNet's noise map): which input channel, where its value
 * comes from and how HU map to it. A job whose volume has no measured noise is skipped (or fails, when forced) with
 * that reason: the value is never guessed.
 */
export const NoiseLevelInput = z.object({
  /** Index of the channel in the input tensor's C dimension: after the image channels (= contextSlices). */
  channel: z.number().int().nonnegative(),
  /** "measured-noise": the probe's noiseHu of the series (src/measure/blood-and-noise.ts), the only source so far. */
  source: z.literal("measured-noise"),
  /** Network value = noise (HU) x scale; e.g. 0.01 puts 30 HU at 0.3. */
  scale: z.number().positive(),
  /**
   * The noise levels (HU, the probe's measure) the network was trained on; a series measured outside is skipped:
   * the noise input would be extrapolated.
   */
  trainedNoiseHu: Range.optional(),
}).strict();
export type NoiseLevelInput = z.infer<typeof NoiseLevelInput>;

/** The network's range for HU: clipped to [huMin, huMax] and mapped linearly to [networkMin, networkMax]. */
const Intensity = z.object({
  huMin: z.number(),
  huMax: z.number(),
  networkMin: z.number(),
  networkMax: z.number(),
});
const intensityUsable = (i: z.infer<typeof Intensity>): boolean => i.huMax > i.huMin && i.networkMax !== i.networkMin;
const INTENSITY_UNUSABLE = "huMax must exceed huMin and the network range must not be empty";

/** An ONNX file beside the manifest and its sha256 (hex), checked before it is used. */
const ModelFile = z.object({ file: z.string().min(1), sha256: z.string().regex(/^[0-9a-f]{64}$/) }).strict();

/**
 * Detection models, two-stage (Detector v2, docs/candidate-classifier.md): the probability map gives
 * candidates (its components above the manifest's `threshold`, big enough, in the lungs) and this small 3D network
 * scores a patch around each one's centre. Only the candidates it scores at or above its `threshold` become findings,
 * and its probability is their confidence.
 */
export const CandidateClassifier = z.object({
  /** The ONNX file, relative to the manifest's folder; opset 13, fp32. */
  file: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** Input tensor: [N, 1, P, P, P] float32, N dynamic; axes D = slice index, H = row, W = column. */
  input: z.string().min(1),
  /** Output tensor: [N, 1], the probability (sigmoid inside the graph) that the candidate is a nodule. */
  output: z.string().min(1),
  /** P: the patch's points along each axis. */
  patchVoxels: z.number().int().positive().default(32),
  /** Distance between the patch's points along the volume's slice, row and column axes, mm. */
  spacingMm: z.number().positive().default(1),
  intensity: Intensity.strict().refine(intensityUsable, INTENSITY_UNUSABLE),
  /** Candidates the classifier scores below this are dropped. */
  threshold: z.number().min(0).max(1),
  /** Optional fp16 copy of the classifier, used where the provider benefits (as the model's own `fp16`). */
  fp16: ModelFile.optional(),
}).strict();
export type CandidateClassifier = z.infer<typeof CandidateClassifier>;

export const ModelManifest = z.object({
  /** Stable identifier, also the manifest's file name without .json. */
  id: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, "lower-case letters, digits, '.', '_' and '-'"),
  version: z.string().min(1),
  task: ModelTask,
  /** Human-readable name shown in the API and in DICOM Contributing Equipment. */
  name: z.string().min(1),
  /** The ONNX file, relative to the manifest's folder. */
  file: z.string().min(1),
  /** sha256 of the ONNX file, hex; checked when the model is loaded. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  input: z.object({
    name: z.string().min(1),
    /** Only NCHW is supported: N slices, C = contextSlices channels, H rows, W columns. */
    layout: z.literal("NCHW"),
    /**
     * Neighbouring slices fed as channels (2.5D): 1 = the slice alone; 3 = previous, current, next.
     * Odd; slices beyond the volume's ends repeat the edge slice.
     */
    contextSlices: z.number().int().positive().refine((n) => n % 2 === 1, "must be odd"),
    /** Fixed [rows, columns] if the network only accepts one size (e.g. CTA-GAN's 512x512); absent = any size. */
    size: z.tuple([z.number().int().positive(), z.number().int().positive()]).optional(),
    /** Rows and columns are padded up to a multiple of this, with the network value of huMin (air). */
    spatialMultiple: z.number().int().positive().default(1),
    /**
     * A noise-level map as one more input channel (FFDNet): every pixel of it, padding included, holds the image
     * noise the anatomy probe measured on the series (`noiseHu`, HU) x `scale`. Absent = the image channels only.
     */
    noiseLevel: NoiseLevelInput.optional(),
  }).refine((i) => i.noiseLevel === undefined || i.noiseLevel.channel === i.contextSlices,
    { message: "noiseLevel.channel must follow the image channels (= contextSlices)", path: ["noiseLevel", "channel"] }),
  output: z.object({
    name: z.string().min(1),
    meaning: OutputMeaning,
  }),
  /**
   * Linear map between HU and the network's range: HU is clipped to [huMin, huMax] and mapped to
   * [networkMin, networkMax]; a "hu-image" output is mapped back by the inverse.
   * CTA-GAN: huMin -1024, huMax 3071, networkMin -1, networkMax 1.
   */
  intensity: Intensity.refine(intensityUsable, INTENSITY_UNUSABLE),
  /** Slices per inference call; the runner lowers it when the device runs out of memory. */
  batchSize: z.number().int().positive().default(8),
  /**
   * Detection models: probability above which a voxel belongs to a finding; with a `candidateClassifier`, to a
   * candidate the classifier then scores.
   */
  threshold: z.number().min(0).max(1).optional(),
  /** Detection models: what a finding is and where, and which components count (defaults: lung nodules). */
  findings: z.object({
    /** Coded finding, e.g. (27925004, SCT, "Nodule"). */
    code: CodedConcept.default({ value: "27925004", scheme: "SCT", meaning: "Nodule" }),
    /** Coded finding site, e.g. (39607008, SCT, "Lung"). */
    site: CodedConcept.default({ value: "39607008", scheme: "SCT", meaning: "Lung" }),
    /** Tracking identifiers read "<label> 1", "<label> 2", ... */
    label: z.string().min(1).max(40).default("Nodule"),
    minVolumeMm3: z.number().nonnegative().default(10),
    /** The lesions the detector is for, longest diameter in mm: stated in the SR, qualifying "no finding". */
    diameterMm: z.object({ min: z.number().positive(), max: z.number().positive() }).strict().default({ min: 3, max: 30 }),
    /**
     * What a finding measured longer than `diameterMm.max` is reported as, with a statement that it lies outside the
     * detector's scope; default (4147007, SCT, "Mass"): over 3 cm a lung lesion is a mass, not a nodule (Fleischner
     * Society glossary, Hansell et al., Radiology 2008;246:697-722).
     */
    oversizeCode: CodedConcept.default({ value: "4147007", scheme: "SCT", meaning: "Mass" }),
    /** Findings farther than this outside the lung mask are dropped, mm. */
    lungMarginMm: z.number().nonnegative().default(5),
  }).prefault({}),
  /** Where the model may run; a manifest without it is refused. */
  intendedUse: IntendedUse,
  /** What its output must satisfy before it is stored; a manifest without checks is refused. */
  outputChecks: z.array(OutputCheck).min(1),
  /** Optional fp16 variant of the same network (file and its sha256), used where the provider benefits. */
  fp16: z.object({ file: z.string().min(1), sha256: z.string().regex(/^[0-9a-f]{64}$/) }).optional(),
  /** The model card, relative to the manifest's folder. */
  card: z.string().optional(),
  description: z.string().default(""),
  /** Detection models: the second stage that scores each candidate of the probability map (absent: one stage). */
  candidateClassifier: CandidateClassifier.optional(),
}).refine((m) => m.candidateClassifier === undefined || m.task === "detection",
  { message: "only detection models have a candidate classifier", path: ["candidateClassifier"] });
export type ModelManifest = z.infer<typeof ModelManifest>;
