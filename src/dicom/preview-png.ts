/**
 * A minimal PNG encoder (8-bit grayscale, no interlace) for job previews: signature, IHDR, one zlib IDAT, IEND
 * (ISO/IEC 15948). node:zlib does the deflate and the CRC-32; every scanline uses filter type 0 (none).
 */
import { crc32, deflateSync } from "node:zlib";

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const COLOUR_TYPE_GRAYSCALE = 0;

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typeAndData = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typeAndData) >>> 0);
  return Buffer.concat([length, typeAndData, crc]);
}

/** Encodes row-major 8-bit gray pixels (width x height) as a PNG file. */
export function encodeGrayscalePng(width: number, height: number, pixels: Uint8Array): Buffer {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`PNG size must be positive integers, got ${width}x${height}`);
  }
  if (pixels.length !== width * height) {
    throw new RangeError(`PNG pixels: expected ${width * height} bytes for ${width}x${height}, got ${pixels.length}`);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = COLOUR_TYPE_GRAYSCALE;
  header[10] = 0; // compression: deflate
  header[11] = 0; // filter method 0
  header[12] = 0; // no interlace
  const scanlines = Buffer.alloc((width + 1) * height);
  for (let row = 0; row < height; row++) {
    scanlines[row * (width + 1)] = 0; // filter type: none
    scanlines.set(pixels.subarray(row * width, (row + 1) * width), row * (width + 1) + 1);
  }
  return Buffer.concat([
    SIGNATURE,
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(scanlines)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** HU -> 8-bit gray through a window (center/width in HU), as a display would show it (linear, clipped). */
export function windowToGray(hu: Float32Array, center: number, width: number): Uint8Array {
  const low = center - width / 2;
  const gray = new Uint8Array(hu.length);
  for (let i = 0; i < hu.length; i++) {
    const value = ((hu[i]! - low) / width) * 255;
    gray[i] = value <= 0 ? 0 : value >= 255 ? 255 : Math.round(value);
  }
  return gray;
}
