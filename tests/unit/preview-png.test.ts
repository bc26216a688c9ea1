import { crc32, inflateSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { encodeGrayscalePng, windowToGray } from "../../src/dicom/preview-png.js";
import { beforeAfterPng, previewSliceIndex } from "../../src/pipeline/stages/preview.js";

/** Reads the chunks back, checking every CRC; returns IHDR fields and the inflated scanlines. */
function readPng(png: Buffer) {
  expect(png.subarray(0, 8).toString("hex")).toBe("89504e470d0a1a0a");
  const chunks: { type: string; data: Buffer }[] = [];
  for (let at = 8; at < png.length;) {
    const length = png.readUInt32BE(at);
    const type = png.subarray(at + 4, at + 8).toString("ascii");
    const data = png.subarray(at + 8, at + 8 + length);
    expect(png.readUInt32BE(at + 8 + length), `${type} CRC`).toBe(crc32(png.subarray(at + 4, at + 8 + length)) >>> 0);
    chunks.push({ type, data });
    at += 12 + length;
  }
  expect(chunks.map((c) => c.type)).toEqual(["IHDR", "IDAT", "IEND"]);
  const ihdr = chunks[0]!.data;
  return { width: ihdr.readUInt32BE(0), height: ihdr.readUInt32BE(4), bitDepth: ihdr[8], colourType: ihdr[9], scanlines: inflateSync(chunks[1]!.data) };
}

describe("PNG preview encoder", () => {
  it("writes 8-bit grayscale that reads back pixel for pixel", () => {
    const pixels = Uint8Array.from({ length: 7 * 3 }, (_, i) => (i * 37) % 256);
    const png = readPng(encodeGrayscalePng(7, 3, pixels));
    expect([png.width, png.height, png.bitDepth, png.colourType]).toEqual([7, 3, 8, 0]);
    for (let row = 0; row < 3; row++) {
      expect(png.scanlines[row * 8]).toBe(0); // filter: none
      expect([...png.scanlines.subarray(row * 8 + 1, row * 8 + 8)]).toEqual([...pixels.subarray(row * 7, row * 7 + 7)]);
    }
  });

  it("refuses pixels that do not fit the size, naming both", () => {
    expect(() => encodeGrayscalePng(4, 4, new Uint8Array(15))).toThrow(/expected 16 bytes for 4x4, got 15/);
  });

  it("windows HU linearly and clips (W400 L40: -160 HU black, 240 HU white)", () => {
    expect([...windowToGray(Float32Array.from([-1000, -160, 40, 240, 3000]), 40, 400)]).toEqual([0, 0, 128, 255, 255]);
  });

  it("puts the source's slice left and the output's right", () => {
    const rows = 2, columns = 3;
    const before = new Float32Array(rows * columns).fill(3000); // white
    const after = new Float32Array(rows * columns).fill(-1000); // black
    expect(previewSliceIndex(3)).toBe(1);
    expect(() => beforeAfterPng({ rows, columns, before, after: after.subarray(1) })).toThrow(/slices of 6 and 5 voxels where 2x3 is 6/);
    const png = readPng(beforeAfterPng({ rows, columns, before, after }));
    expect(png.width).toBe(columns * 2 + 4);
    const firstRow = [...png.scanlines.subarray(1, 1 + png.width)];
    expect(firstRow.slice(0, 3)).toEqual([255, 255, 255]);
    expect(firstRow.slice(-3)).toEqual([0, 0, 0]);
  });
});
