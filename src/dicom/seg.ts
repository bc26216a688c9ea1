/**
 * DICOM Segmentation (PS3.3 A.51) of detection findings: BINARY, one segment per finding (findings[i] is segment
 * i + 1, which the SR's Referenced Segment items rely on), one frame per (segment, source slice that contains it),
 * frames ordered by segment then along the slice normal. Every frame lies exactly on its source slice: same Rows and
 * Columns, same orientation (shared), the slice's ImagePositionPatient, and a Derivation Image reference to it.
 * Pixels are packed 1 bit per pixel, little bit first, frames back to back with no padding between them
 * (PS3.5 8.1.1 and 8.2.1: only the end of Pixel Data is padded to an even length).
 */
import type { CtVolume } from "./ct-volume.js";
import { type AlgorithmIdentity, type CodedConcept, type Finding, validateCodedConcept } from "./finding.js";
import { modelStatement } from "./sr/algorithm-identification.js";
import {
  ARTIFICIAL_INTELLIGENCE,
  MORPHOLOGICALLY_ABNORMAL_STRUCTURE,
  SEGMENTATION_DERIVATION,
  SOURCE_IMAGE_FOR_IMAGE_PROCESSING_OPERATION,
} from "./sr/codes.js";
import { codeSequenceItem } from "./coded-concept.js";
import { SopClass, writePart10 } from "./part10.js";
import { type ResultInstanceIdentity, resultInstanceHeader, validateResultInput } from "./result-instance.js";
import { deterministicUid } from "./uid.js";
import { formatDS } from "./value-formats.js";

export const DEFAULT_SEG_SERIES_DESCRIPTION = "AI-generated findings (SEG) NOT FOR DIAGNOSTIC USE";

/** Segment Number (0062,0004) of findings[index]. */
export function segmentNumberOf(findingIndex: number): number {
  return findingIndex + 1;
}

export interface SegmentationInput {
  volume: CtVolume;
  findings: readonly Finding[];
  algorithm: AlgorithmIdentity;
  identity: ResultInstanceIdentity;
  /** Segmented Property Category (CID 7150); default Morphologically Abnormal Structure. */
  propertyCategory?: CodedConcept;
}

/** One frame of the output: which segment, which source slice, which pixels are set. */
interface Frame {
  segmentNumber: number;
  slice: number;
  pixels: readonly number[];
}

/** Packs frames of rows*columns pixels into one bit stream, LSB first, padded to an even byte length. */
export function packBinaryFrames(frames: readonly (readonly number[])[], pixelsPerFrame: number): Uint8Array {
  const totalBits = frames.length * pixelsPerFrame;
  const bytes = new Uint8Array(Math.ceil(Math.ceil(totalBits / 8) / 2) * 2);
  frames.forEach((pixels, f) => {
    const base = f * pixelsPerFrame;
    for (const p of pixels) {
      const bit = base + p;
      bytes[bit >> 3]! |= 1 << (bit & 7);
    }
  });
  return bytes;
}

function framesOf(findings: readonly Finding[]): Frame[] {
  return findings.flatMap((f, i) =>
    [...f.mask].sort((a, b) => a.slice - b.slice).map((m) => ({ segmentNumber: segmentNumberOf(i), slice: m.slice, pixels: m.pixels })),
  );
}

function segmentsOverlap(frames: readonly Frame[]): "YES" | "NO" {
  const seen = new Map<number, Set<number>>();
  for (const frame of frames) {
    let onSlice = seen.get(frame.slice);
    if (!onSlice) seen.set(frame.slice, (onSlice = new Set()));
    const mine = new Set(frame.pixels);
    for (const p of mine) if (onSlice.has(p)) return "YES";
    for (const p of mine) onSlice.add(p);
  }
  return "NO";
}

function validate(input: SegmentationInput): void {
  const { volume, findings } = input;
  if (!volume) throw new RangeError("volume: is required");
  if (!Array.isArray(findings) || findings.length === 0) {
    throw new RangeError("findings: a Segmentation needs at least one finding (write none when nothing was found)");
  }
  if (input.propertyCategory) validateCodedConcept(input.propertyCategory, "propertyCategory");
  if (volume.imagePositionPatient.length !== volume.slices || volume.sourceSlices.length !== volume.slices) {
    throw new RangeError("volume: imagePositionPatient and sourceSlices must have one entry per slice");
  }
  validateResultInput(input);
}

/**
 * Algorithm Identification Macro (PS3.3 Table 10-19) of the model, for Segmentation Algorithm Identification
 * Sequence (0062,0007): family (CID 7162) Artificial Intelligence, the model's name and version, what it was run with.
 */
function algorithmIdentificationItem(algorithm: AlgorithmIdentity): Record<string, unknown> {
  return {
    AlgorithmFamilyCodeSequence: [codeSequenceItem(ARTIFICIAL_INTELLIGENCE)],
    AlgorithmName: algorithm.name.slice(0, 64),
    AlgorithmVersion: algorithm.modelVersion.slice(0, 64),
    AlgorithmParameters: [modelStatement(algorithm), ...(algorithm.parameters ?? [])].join("; ").slice(0, 10240),
    AlgorithmSource: algorithm.manufacturer.slice(0, 64),
  };
}

/**
 * Recommended Display CIELab Value (PS3.3 C.8.20.2.1, scaled: L* 0..100 and a*, b* -128..127 onto 0..65535) of each
 * segment, cycling: red-orange sRGB (255, 64, 0), yellow (255, 210, 0), magenta (230, 0, 200), cyan (0, 200, 230),
 * converted with scikit-image's rgb2lab (D65). Without it viewers pick their own colour (OHIF warns that it did).
 */
const SEGMENT_COLOURS_CIELAB = [[37362, 50724, 50552], [56153, 33054, 55064], [34698, 55211, 22163], [48627, 25018, 26086]] as const;

function segmentItem(finding: Finding, index: number, input: SegmentationInput): Record<string, unknown> {
  const { algorithm } = input;
  return {
    SegmentNumber: segmentNumberOf(index),
    SegmentLabel: finding.trackingId,
    SegmentDescription: `${finding.findingCode.meaning}, certainty ${formatDS(Math.round(finding.probability * 1000) / 10)}%`.slice(0, 64),
    SegmentAlgorithmType: "AUTOMATIC",
    SegmentAlgorithmName: algorithm.name.slice(0, 64),
    RecommendedDisplayCIELabValue: [...SEGMENT_COLOURS_CIELAB[index % SEGMENT_COLOURS_CIELAB.length]!],
    SegmentationAlgorithmIdentificationSequence: [algorithmIdentificationItem(algorithm)],
    SegmentedPropertyCategoryCodeSequence: [codeSequenceItem(input.propertyCategory ?? MORPHOLOGICALLY_ABNORMAL_STRUCTURE)],
    SegmentedPropertyTypeCodeSequence: [codeSequenceItem(finding.findingCode)],
    AnatomicRegionSequence: [codeSequenceItem(finding.findingSiteCode)],
    TrackingID: finding.trackingId,
    TrackingUID: finding.trackingUid,
  };
}

const SEGMENTATION_OBJECT = { sopClassUID: SopClass.Segmentation, modality: "SEG", seriesDescription: DEFAULT_SEG_SERIES_DESCRIPTION } as const;

/** The Segmentation instance as a dcmjs naturalized dataset. */
export function buildSegmentation(input: SegmentationInput): Record<string, unknown> {
  validate(input);
  const { volume, findings, algorithm, identity } = input;
  const header = volume.sliceHeaders[0];
  const frames = framesOf(findings);
  const usedSlices = [...new Set(frames.map((f) => f.slice))].sort((a, b) => a - b);
  const positionIndex = new Map(usedSlices.map((slice, i) => [slice, i + 1]));
  const dimensionOrganizationUID = deterministicUid("ct-enhance", "seg-dimensions", identity.sopInstanceUID);
  const headerThickness = Number(header?.SliceThickness);
  const sliceThickness = Number.isFinite(headerThickness) && headerThickness > 0 ? headerThickness : volume.sliceSpacing;
  const pixelsPerFrame = volume.rows * volume.columns;

  const perFrame = frames.map((frame) => {
    const source = volume.sourceSlices[frame.slice]!;
    return {
      DerivationImageSequence: [
        {
          SourceImageSequence: [
            {
              ReferencedSOPClassUID: source.sopClassUID,
              ReferencedSOPInstanceUID: source.sopInstanceUID,
              PurposeOfReferenceCodeSequence: [codeSequenceItem(SOURCE_IMAGE_FOR_IMAGE_PROCESSING_OPERATION)],
            },
          ],
          DerivationCodeSequence: [codeSequenceItem(SEGMENTATION_DERIVATION)],
        },
      ],
      FrameContentSequence: [{ DimensionIndexValues: [frame.segmentNumber, positionIndex.get(frame.slice)!] }],
      PlanePositionSequence: [{ ImagePositionPatient: volume.imagePositionPatient[frame.slice]!.map((v) => formatDS(v)) }],
      SegmentIdentificationSequence: [{ ReferencedSegmentNumber: frame.segmentNumber }],
    };
  });

  return {
    ...resultInstanceHeader(SEGMENTATION_OBJECT, volume, identity, algorithm),
    // Frame of Reference: the source's
    FrameOfReferenceUID: volume.frameOfReferenceUID,
    PositionReferenceIndicator: typeof header?.PositionReferenceIndicator === "string" ? header.PositionReferenceIndicator : "",
    // General Image + Segmentation Image
    ImageType: ["DERIVED", "PRIMARY"],
    ImageComments: ["AI-generated segmentation of detected findings. Not for diagnostic use.", ...(algorithm.parameters ?? [])].join(" ").slice(0, 10240),
    BurnedInAnnotation: "NO",
    ContentLabel: "AI_FINDINGS",
    ContentDescription: "AI-generated, not for diagnostic use",
    ContentCreatorName: "",
    SegmentationType: "BINARY",
    SegmentsOverlap: segmentsOverlap(frames),
    SegmentSequence: findings.map((f, i) => segmentItem(f, i, input)),
    // Image Pixel
    SamplesPerPixel: 1,
    PhotometricInterpretation: "MONOCHROME2",
    Rows: volume.rows,
    Columns: volume.columns,
    BitsAllocated: 1,
    BitsStored: 1,
    HighBit: 0,
    PixelRepresentation: 0,
    LossyImageCompression: "00",
    // Multi-frame Functional Groups + Multi-frame Dimension
    NumberOfFrames: frames.length,
    SharedFunctionalGroupsSequence: [
      {
        PlaneOrientationSequence: [{ ImageOrientationPatient: volume.imageOrientationPatient.map((v) => formatDS(v)) }],
        PixelMeasuresSequence: [
          {
            PixelSpacing: volume.pixelSpacing.map((v) => formatDS(v)),
            SliceThickness: formatDS(sliceThickness),
            SpacingBetweenSlices: formatDS(volume.sliceSpacing),
          },
        ],
      },
    ],
    PerFrameFunctionalGroupsSequence: perFrame,
    DimensionOrganizationSequence: [{ DimensionOrganizationUID: dimensionOrganizationUID }],
    DimensionIndexSequence: [
      {
        DimensionOrganizationUID: dimensionOrganizationUID,
        DimensionIndexPointer: 0x0062000b, // Referenced Segment Number
        FunctionalGroupPointer: 0x0062000a, // Segment Identification Sequence
        DimensionDescriptionLabel: "ReferencedSegmentNumber",
      },
      {
        DimensionOrganizationUID: dimensionOrganizationUID,
        DimensionIndexPointer: 0x00200032, // Image Position (Patient)
        FunctionalGroupPointer: 0x00209113, // Plane Position Sequence
        DimensionDescriptionLabel: "ImagePositionPatient",
      },
    ],
    // Common Instance Reference: the source slices the frames derive from
    ReferencedSeriesSequence: [
      {
        SeriesInstanceUID: volume.seriesInstanceUID,
        ReferencedInstanceSequence: usedSlices.map((slice) => ({
          ReferencedSOPClassUID: volume.sourceSlices[slice]!.sopClassUID,
          ReferencedSOPInstanceUID: volume.sourceSlices[slice]!.sopInstanceUID,
        })),
      },
    ],
    PixelData: packBinaryFrames(
      frames.map((f) => f.pixels),
      pixelsPerFrame,
    ).buffer,
    _vrMap: { PixelData: "OB" },
  };
}

/** The Segmentation instance as a Part-10 file (Explicit VR Little Endian). */
export function writeSegmentation(input: SegmentationInput): Uint8Array {
  return writePart10(buildSegmentation(input));
}
