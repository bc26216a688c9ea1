import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { boundaryOf, buildMultipartRelated, MultipartError, readMultipartParts } from "../../../src/dicomweb/multipart.js";

/** Feeds `body` in chunks of the given sizes (cycled), as a network would. */
async function* chunked(body: Uint8Array, sizes: number[]): AsyncGenerator<Uint8Array> {
  let at = 0;
  for (let i = 0; at < body.length; i += 1) {
    const size = sizes[i % sizes.length]!;
    yield body.subarray(at, at + size);
    at += size;
  }
}

async function collect(parts: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const part of parts) out.push(part);
  return out;
}

const ascii = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));

describe("multipart/related", () => {
  const boundary = "b0undary-x";
  // Parts that look like the delimiter's beginning, an empty part, and one ending in CR.
  const tricky = [
    ascii("\r\n--b0undary"),
    new Uint8Array(0),
    ascii("--b0undary-y is not our boundary\r\n--b0undar"),
    ascii("ends in CR\r"),
    randomBytes(3000),
  ];

  it("reads the boundary from Content-Type, quoted or not", () => {
    expect(boundaryOf('multipart/related; type="application/dicom"; boundary=abc-123')).toBe("abc-123");
    expect(boundaryOf('Multipart/Related; boundary="a b;c"; type="application/dicom"')).toBe("a b;c");
    expect(() => boundaryOf("application/dicom")).toThrow(MultipartError);
    expect(() => boundaryOf("multipart/related; type=x")).toThrow(/no boundary/);
  });

  it("round-trips parts built by buildMultipartRelated, whatever the chunking", async () => {
    const parts = [...tricky, randomBytes(70_000)];
    const { body, contentType } = buildMultipartRelated(parts);
    expect(contentType).toMatch(/^multipart\/related; type="application\/dicom"; boundary=/);
    for (const sizes of [[1], [2], [3], [7, 1, 13], [64], [4096, 5], [body.length]]) {
      const read = await collect(readMultipartParts(chunked(body, sizes), boundaryOf(contentType)));
      expect(read.map((p) => Buffer.from(p).toString("hex"))).toEqual(parts.map((p) => Buffer.from(p).toString("hex")));
    }
  });

  it("splits parts without Content-Length, with a preamble, transport padding and an epilogue", async () => {
    const body = Buffer.concat([
      ascii(`preamble to ignore\r\n--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`),
      tricky[0]!,
      ascii(`\r\n--${boundary}  \t\r\n\r\n`), // transport padding, then a part without headers
      tricky[2]!,
      ascii(`\r\n--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`),
      tricky[4]!,
      ascii(`\r\n--${boundary}--\r\nepilogue to ignore`),
    ]);
    for (const sizes of [[1], [5, 3], [body.length]]) {
      const read = await collect(readMultipartParts(chunked(body, sizes), boundary));
      expect(read.map((p) => Buffer.from(p).toString("hex"))).toEqual(
        [tricky[0]!, tricky[2]!, tricky[4]!].map((p) => Buffer.from(p).toString("hex")),
      );
    }
  });

  it("yields parts that own their memory, as soon as each is complete", async () => {
    const parts = [randomBytes(10_000), randomBytes(10_000)];
    const { body, contentType } = buildMultipartRelated(parts);
    let delivered = 0;
    async function* network(): AsyncGenerator<Uint8Array> {
      const half = Math.floor(body.length / 2) + 200; // the first part and its delimiter are in the first half
      delivered = 1;
      yield body.subarray(0, half);
      delivered = 2;
      yield body.subarray(half);
    }
    const reader = readMultipartParts(network(), boundaryOf(contentType));
    const first = await reader.next();
    expect(delivered).toBe(1);
    expect(first.value).toBeInstanceOf(Uint8Array);
    const part = first.value as Uint8Array;
    expect(part.byteOffset).toBe(0);
    expect(part.buffer.byteLength).toBe(part.byteLength);
    expect(Buffer.from(part).equals(parts[0]!)).toBe(true);
    expect((await collect(reader)).length).toBe(1);
  });

  it("reports a body cut short as truncated, and a wrong Content-Length as malformed", async () => {
    const { body, contentType } = buildMultipartRelated([randomBytes(1000), randomBytes(1000)]);
    const cut = readMultipartParts(chunked(body.subarray(0, 1500), [100]), boundaryOf(contentType));
    await expect(collect(cut)).rejects.toMatchObject({ name: "MultipartError", truncated: true });

    const lying = ascii(`--${boundary}\r\nContent-Length: 5\r\n\r\n123456\r\n--${boundary}--\r\n`);
    await expect(collect(readMultipartParts(chunked(lying, [4]), boundary))).rejects.toMatchObject({
      name: "MultipartError",
      truncated: false,
    });
  });

  it("splits a 137 MB series body at hundreds of MB/s", async () => {
    // 261 CT-sized instances in 64 KiB network chunks, like a WADO-RS answer for lidc-idri-0002-ncct.
    const instance = randomBytes(526_000);
    const parts = Array.from({ length: 261 }, () => instance);
    const { body, contentType } = buildMultipartRelated(parts);
    const started = performance.now();
    let bytes = 0;
    for await (const part of readMultipartParts(chunked(body, [65_536]), boundaryOf(contentType))) bytes += part.length;
    const seconds = (performance.now() - started) / 1000;
    const mbPerSecond = body.length / 1e6 / seconds;
    console.info(`multipart split: ${(body.length / 1e6).toFixed(0)} MB in ${(seconds * 1000).toFixed(0)} ms = ${mbPerSecond.toFixed(0)} MB/s`);
    expect(bytes).toBe(261 * instance.length);
    expect(mbPerSecond).toBeGreaterThan(100); // loose: shared CI machines; ~1 GB/s unloaded
  });
});
