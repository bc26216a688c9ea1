import { data } from "dcmjs";
import { beforeAll, describe, expect, it } from "vitest";
import type { CtVolume } from "../../../src/dicom/ct-volume.js";
import { assembleVolume } from "../../../src/dicom/volume.js";
import { VolumeError } from "../../../src/dicom/dicom-errors.js";
import { readCtSeries, requireCtData } from "../../helpers/ct-data.js";

const ready = requireCtData("lidc-idri-0002-ncct", "ricord-ncct-jpegls");

/** Re-encodes a Part-10 instance after changing its header (keywords as dcmjs names them). */
function mutate(bytes: Uint8Array, change: (header: Record<string, unknown>) => void): Uint8Array {
  const dicom = data.DicomMessage.readFile(bytes.slice().buffer);
  const header = data.DicomMetaDictionary.naturalizeDataset(dicom.dict);
  for (const key of Object.keys(header)) if (/^[0-9A-F]{8}$/i.test(key)) delete header[key]; // private tags
  change(header);
  dicom.dict = data.DicomMetaDictionary.denaturalizeDataset(header);
  return new Uint8Array(dicom.write());
}

async function refusal(instances: Uint8Array[]): Promise<VolumeError> {
  try {
    await assembleVolume(instances);
  } catch (error) {
    expect(error).toBeInstanceOf(VolumeError);
    expect(error).toMatchObject({ retryable: false });
    return error as VolumeError;
  }
  throw new Error("expected the volume to be refused");
}

describe.skipIf(!ready)("volume assembly on LIDC-IDRI-0002 (261 slices, 1.25 mm)", () => {
  let instances: Uint8Array[];
  let volume: CtVolume;
  /** 24 contiguous slices (in position order) for the error cases: quick to mutate and re-assemble. */
  let stack: Uint8Array[];

  beforeAll(async () => {
    instances = readCtSeries("lidc-idri-0002-ncct");
    volume = await assembleVolume(instances);
    const bySopInstanceUid = new Map(instances.map((bytes) => [sopInstanceUidOf(bytes), bytes]));
    stack = volume.sourceSlices.slice(100, 124).map((s) => bySopInstanceUid.get(s.sopInstanceUID)!);
  });

  function sopInstanceUidOf(bytes: Uint8Array): string {
    const dicom = data.DicomMessage.readFile(bytes.slice().buffer, { untilTag: "00080018", includeUntilTagValue: true });
    return String(dicom.dict["00080018"]!.Value![0]);
  }

  it("sorts the slices along the normal with uniform 1.25 mm spacing", () => {
    expect(volume.slices).toBe(261);
    expect([volume.rows, volume.columns]).toEqual([512, 512]);
    expect(volume.hu.length).toBe(261 * 512 * 512);
    expect(volume.sliceSpacing).toBeCloseTo(1.25, 2);
    expect(volume.pixelSpacing[0]).toBeCloseTo(0.681641, 6);
    expect(volume.imageOrientationPatient).toEqual([1, 0, 0, 0, 1, 0]);
    const zs = volume.imagePositionPatient.map((p) => p[2]);
    zs.slice(1).forEach((zk, k) => expect(Math.abs(zk - zs[k]! - 1.25)).toBeLessThan(0.0125));
    expect(zs[0]).toBeCloseTo(-334.5, 3);
    expect(zs.at(-1)).toBeCloseTo(-9.5, 3);
    expect(new Set(volume.sourceSlices.map((s) => s.sopInstanceUID)).size).toBe(261);
    expect(volume.sliceHeaders[0]!.PixelData).toBeUndefined();
    expect(volume.sliceHeaders[0]!.StudyInstanceUID).toBe(volume.studyInstanceUID);
  });

  it("converts stored values to HU (air, soft tissue, padding outside the field of view)", () => {
    const voxel = (k: number, r: number, c: number) => volume.hu[(k * 512 + r) * 512 + c]!;
    expect(voxel(130, 0, 0)).toBe(-3024); // PixelPaddingValue -2000 x 1 - 1024
    expect(voxel(130, 32, 256)).toBeLessThan(-900); // air in front of the chest
    expect(voxel(130, 224, 160)).toBeLessThan(-500); // lung
    expect(Math.abs(voxel(130, 384, 256))).toBeLessThan(200); // soft tissue of the back
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < volume.hu.length; i += 1) {
      const v = volume.hu[i]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    expect(min).toBe(-3024);
    expect(max).toBeGreaterThan(1000); // bone
  });

  it("gives the same volume whatever order the instances arrive in, from an async source", async () => {
    async function* reversed(): AsyncGenerator<Uint8Array> {
      for (const bytes of [...stack].reverse()) yield bytes;
    }
    const a = await assembleVolume(stack);
    const b = await assembleVolume(reversed());
    expect(b.imagePositionPatient).toEqual(a.imagePositionPatient);
    expect(b.sourceSlices).toEqual(a.sourceSlices);
    expect(Buffer.from(b.hu.buffer).equals(Buffer.from(a.hu.buffer))).toBe(true);
  });

  it("fills the same volume whatever the expected count, byte alignment or trailing elements", async () => {
    const reference = await assembleVolume(stack);
    const bytesOf = (hu: Float32Array) => Buffer.from(hu.buffer, hu.byteOffset, hu.byteLength);
    const shuffled = stack.map((bytes, k) => stack[(k * 7) % stack.length]!); // 7 and 24 coprime: a permutation
    for (const expectedSlices of [24, 5, 26, 40]) {
      const volume = await assembleVolume(shuffled, { expectedSlices });
      expect(volume.hu.length, `expectedSlices ${expectedSlices}`).toBe(reference.hu.length);
      expect(bytesOf(volume.hu).equals(bytesOf(reference.hu)), `expectedSlices ${expectedSlices}`).toBe(true);
    }
    // Pixels at an odd address (copied, not viewed) and PixelData followed by Data Set Trailing Padding (FFFC,FFFC),
    // which makes the fast path step aside for a full parse.
    const unaligned = stack.map((bytes) => {
      const holder = new Uint8Array(bytes.length + 1);
      holder.set(bytes, 1);
      return holder.subarray(1);
    });
    const trailingPadding = new Uint8Array([0xfc, 0xff, 0xfc, 0xff, 0x4f, 0x42, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0]);
    const padded = stack.map((bytes) => Buffer.concat([bytes, trailingPadding]));
    for (const [name, instances] of [["unaligned", unaligned], ["padded", padded]] as const) {
      const volume = await assembleVolume(instances);
      expect(bytesOf(volume.hu).equals(bytesOf(reference.hu)), name).toBe(true);
    }
  });

  it("names the gap of a missing slice", async () => {
    const missing = [...stack.slice(0, 10), ...stack.slice(11)];
    const error = await refusal(missing);
    expect(error.message).toMatch(/slices 10 and 11 \(in position order: .*InstanceNumber.*\) are 2\.5 mm apart where the series spacing is 1\.25 mm \(missing slice\?\)/);
  });

  it("names a tilted slice and the orientation of the others", async () => {
    const tilt = (5 * Math.PI) / 180;
    const tilted = stack.map((bytes, k) =>
      k === 7 ? mutate(bytes, (h) => (h.ImageOrientationPatient = [1, 0, 0, 0, Math.cos(tilt).toFixed(6), Math.sin(tilt).toFixed(6)])) : bytes,
    );
    const error = await refusal(tilted);
    expect(error.message).toMatch(/has ImageOrientationPatient \[1, 0, 0, 0, 0\.9962, 0\.0872\] but the other 23 slice\(s\) of the series have \[1, 0, 0, 0, 1, 0\]/);
  });

  it("names a slice of another matrix size", async () => {
    const mixed = stack.map((bytes, k) => (k === 3 ? mutate(bytes, (h) => Object.assign(h, { Rows: 256, Columns: 256 })) : bytes));
    const error = await refusal(mixed);
    expect(error.message).toMatch(/has a matrix of 256 rows x 256 columns but the other 23 slice\(s\) of the series have 512 rows x 512 columns/);
  });

  it("refuses duplicate positions, too few slices and another series' slice", async () => {
    const duplicate = mutate(stack[5]!, (h) => (h.SOPInstanceUID = "1.2.826.0.1.3680043.2.1143.7"));
    expect((await refusal([...stack, duplicate])).message).toMatch(/share the position .*1\.2\.826\.0\.1\.3680043\.2\.1143\.7.*\(duplicate instances/);
    expect((await refusal(stack.slice(0, 4))).message).toMatch(/has 4 slice\(s\); at least 10 are needed/);
    const stranger = mutate(stack[2]!, (h) => (h.SeriesInstanceUID = "1.2.3.4"));
    expect((await refusal([...stack.slice(0, 2), stranger, ...stack.slice(3)])).message).toMatch(/has SeriesInstanceUID 1\.2\.3\.4 but the other 23/);
    await expect(assembleVolume(stack.slice(0, 4), { minSlices: 3 })).resolves.toMatchObject({ slices: 4 });
  });

  it("refuses a compressed transfer syntax with a message that says what to do", async () => {
    const jpeg = readCtSeries("ricord-ncct-jpegls").slice(0, 12);
    const error = await refusal(jpeg);
    expect(error.message).toMatch(/transfer syntax 1\.2\.840\.10008\.1\.2\.4\.70 \(JPEG Lossless SV1\).*transfer-syntax=1\.2\.840\.10008\.1\.2\.1/);
  });

  it("refuses bytes that are not DICOM", async () => {
    expect((await refusal([new Uint8Array(300)])).message).toMatch(/instance #1 received is not a readable DICOM Part-10 file/);
  });
});
