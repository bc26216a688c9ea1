/**
 * Bad and odd input, the image pixel module and the encoding (issue 14): real LIDC-IDRI-0002 slices stored the other
 * ways DICOM allows (unsigned with an offset, a rescale slope, overlay bits above the high bit, implicit VR) must give
 * the same HU voxel for voxel; what ct-enhance cannot read (compressed syntaxes, multi-frame, 8-bit, colour, another
 * SOP class) is refused with a reason that names it.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "vitest";
import { requireCtData } from "../../helpers/ct-data.js";
import {
  type CorpusSeries,
  describeVolumeCases,
  edit,
  expectBaseGeometry,
  expectBaseHu,
  type Header,
  readHeader,
  storedPixels,
  type VolumeCase,
  writeHeader,
} from "../../helpers/bad-input-corpus.js";
import { commandExists } from "../../helpers/system-tools.js";

const ready = requireCtData("lidc-idri-0002-ncct");

const editAll = (base: CorpusSeries, change: (h: Header) => void, transferSyntax?: string): Uint8Array[] =>
  base.slices.map((bytes) => edit(bytes, change, transferSyntax));

/** Replaces the stored values of every slice: `f` maps each signed stored value to the new one. */
function restore(h: Header, f: (stored: number) => number, Kind: Uint16ArrayConstructor | Int16ArrayConstructor = Uint16Array): void {
  const stored = storedPixels(h);
  const out = new Kind(stored.length);
  for (let i = 0; i < stored.length; i += 1) out[i] = f(stored[i]!);
  h.PixelData = [out.buffer];
  h._vrMap = { PixelData: "OW" };
}

/** The slices compressed for real with dcmtk's JPEG-LS encoder (dcmcjpls), when it is installed. */
function jpegLs(base: CorpusSeries): Uint8Array[] {
  if (!commandExists("dcmcjpls")) return base.slices.map((bytes) => edit(bytes, () => undefined, "1.2.840.10008.1.2.4.80"));
  const folder = mkdtempSync(path.join(tmpdir(), "ct-enhance-jpegls-"));
  try {
    return base.slices.map((bytes, k) => {
      const [plain, packed] = [path.join(folder, `${k}.dcm`), path.join(folder, `${k}.jls.dcm`)];
      writeFileSync(plain, bytes);
      execFileSync("dcmcjpls", [plain, packed]);
      return new Uint8Array(readFileSync(packed));
    });
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

/** The 12 slices as one Enhanced CT instance (its frames the slices' stored values, one after another). */
function enhancedCt(base: CorpusSeries): Uint8Array[] {
  const headers = base.slices.map((bytes) => readHeader(bytes).header);
  const frames = headers.map((h) => new Uint8Array(storedPixels(h).buffer));
  const all = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  frames.reduce((at, f) => (all.set(f, at), at + f.length), 0);
  const first = headers[0]!;
  Object.assign(first, { SOPClassUID: "1.2.840.10008.5.1.4.1.1.2.1", NumberOfFrames: headers.length, PixelData: [all.buffer] });
  first._vrMap = { PixelData: "OW" };
  delete first.ImagePositionPatient; // an Enhanced CT keeps it per frame, in functional groups
  return [writeHeader(first)];
}

const cases: VolumeCase[] = [
  {
    name: "PixelRepresentation 0 with stored values above 32767",
    instances: (b) => editAll(b, (h) => {
      restore(h, (s) => s + 32768);
      Object.assign(h, { PixelRepresentation: 0, RescaleIntercept: -1024 - 32768, PixelPaddingValue: -2000 + 32768 });
    }),
    outcome: { processed: expectBaseHu },
  },
  {
    name: "BitsStored 13, unsigned, with overlay bits set above the high bit",
    instances: (b) => editAll(b, (h) => {
      restore(h, (s) => (s + 2048) | 0xe000);
      Object.assign(h, { PixelRepresentation: 0, BitsStored: 13, HighBit: 12, RescaleIntercept: -1024 - 2048 });
      delete h.PixelPaddingValue;
    }),
    outcome: { processed: expectBaseHu },
  },
  {
    name: "RescaleSlope 0.5 with the stored values doubled",
    instances: (b) => editAll(b, (h) => {
      restore(h, (s) => s * 2, Int16Array);
      Object.assign(h, { RescaleSlope: 0.5, PixelPaddingValue: -4000 });
    }),
    outcome: { processed: expectBaseHu },
  },
  { name: "RescaleSlope 0", instances: (b) => editAll(b, (h) => (h.RescaleSlope = 0)), outcome: { refused: /instance #1 .* has RescaleSlope 0/ } },
  {
    name: "RescaleSlope missing",
    instances: (b) => editAll(b, (h) => delete h.RescaleSlope),
    outcome: { refused: /instance #1 .*: RescaleSlope is missing; 1 number\(s\) are required/ },
  },
  {
    name: "RescaleIntercept missing",
    instances: (b) => editAll(b, (h) => delete h.RescaleIntercept),
    outcome: { refused: /instance #1 .*: RescaleIntercept is missing/ },
  },
  {
    name: "PixelPaddingValue present (-2000, outside the scan circle)",
    instances: (b) => b.slices,
    outcome: {
      processed: (v, base) => {
        expectBaseGeometry(v, base);
        expect(v.hu[0], "the corner voxel, padding: -2000 x 1 - 1024").toBe(-3024);
      },
    },
  },
  {
    name: "Implicit VR Little Endian",
    instances: (b) => editAll(b, () => undefined, "1.2.840.10008.1.2"),
    outcome: { processed: expectBaseHu },
  },
  {
    name: "JPEG-LS Lossless (dcmcjpls)",
    instances: jpegLs,
    outcome: { refused: /instance #1 .* transfer syntax 1\.2\.840\.10008\.1\.2\.4\.80 \(JPEG-LS Lossless\); .*transfer-syntax=1\.2\.840\.10008\.1\.2\.1/ },
  },
  {
    name: "JPEG 2000 (hand-made header)",
    instances: (b) => editAll(b, () => undefined, "1.2.840.10008.1.2.4.90"),
    outcome: { refused: /transfer syntax 1\.2\.840\.10008\.1\.2\.4\.90 \(JPEG 2000 Lossless\)/ },
  },
  {
    name: "Explicit VR Big Endian",
    instances: (b) => editAll(b, () => undefined, "1.2.840.10008.1.2.2"),
    outcome: { refused: /transfer syntax 1\.2\.840\.10008\.1\.2\.2 \(Explicit VR Big Endian \(retired\)\)/ },
  },
  {
    name: "multi-frame Enhanced CT (12 frames in one instance)",
    instances: enhancedCt,
    outcome: { refused: /instance #1 .* is an Enhanced CT Image \(multi-frame, 12 frames\).*one slice per instance/ },
  },
  {
    name: "a CT Image with NumberOfFrames 2",
    instances: (b) => editAll(b, (h) => (h.NumberOfFrames = 2)),
    outcome: { refused: /instance #1 .* is a multi-frame image \(2 frames\)/ },
  },
  {
    name: "an MR image with CT-looking tags (MR Image Storage, RescaleIntercept -1024)",
    instances: (b) => editAll(b, (h) => Object.assign(h, { SOPClassUID: "1.2.840.10008.5.1.4.1.1.4", Modality: "MR" })),
    outcome: { refused: /instance #1 .* has SOPClassUID 1\.2\.840\.10008\.5\.1\.4\.1\.1\.4 \(MR Image Storage\); only CT Image Storage/ },
  },
  {
    name: "BitsAllocated 8",
    instances: (b) => editAll(b, (h) => Object.assign(h, { BitsAllocated: 8, BitsStored: 8, HighBit: 7 })),
    outcome: { refused: /has BitsAllocated 8; CT slices with 16 are supported/ },
  },
  {
    name: "SamplesPerPixel 3 (colour)",
    instances: (b) => editAll(b, (h) => Object.assign(h, { SamplesPerPixel: 3, PhotometricInterpretation: "RGB" })),
    outcome: { refused: /has SamplesPerPixel 3; a CT slice has 1/ },
  },
  {
    name: "HighBit not BitsStored - 1",
    instances: (b) => editAll(b, (h) => (h.HighBit = 11)),
    outcome: { refused: /has BitsStored 16 and HighBit 11; HighBit = BitsStored - 1 is required/ },
  },
  {
    name: "PixelData missing",
    instances: (b) => editAll(b, (h) => delete h.PixelData),
    outcome: { refused: /instance #1 .* has no PixelData/ },
  },
  {
    name: "PixelData half as long as the matrix needs",
    instances: (b) => editAll(b, (h) => (h.PixelData = [(h.PixelData as ArrayBuffer[])[0]!.slice(0, 64 * 64)])),
    outcome: { refused: /instance #1 .* has 4096 bytes of PixelData where 8192 are expected/ },
  },
  {
    name: "a file cut in half",
    instances: (b) => b.slices.map((bytes) => bytes.slice(0, bytes.length >> 1)),
    outcome: { refused: /^instance #1 received \(InstanceNumber \d+, .*\) is cut short: its PixelData runs to byte \d+ but the file ends at byte \d+/ },
  },
  {
    name: "bytes that are not DICOM",
    instances: () => [new Uint8Array(300), new Uint8Array(300)],
    outcome: { refused: /^instance #1 received is not a readable DICOM Part-10 file/ },
  },
];

describeVolumeCases("bad and odd input: pixel module and encoding (LIDC-IDRI-0002, 12 slices at 64x64)", ready, cases);
