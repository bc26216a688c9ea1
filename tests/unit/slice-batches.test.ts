import { describe, expect, it } from "vitest";
import { ModelManifest } from "../../src/models/manifest.js";
import { fillInputBatch, huToNetwork, networkGeometry, networkToHu, readOutputBatch } from "../../src/models/slice-batches.js";
import { ANY_CT } from "../helpers/manifest-fields.js";

const manifest = ModelManifest.parse({
  ...ANY_CT,
  id: "t", version: "1", task: "synthesis", name: "test", file: "t.onnx", sha256: "0".repeat(64),
  input: { name: "input", layout: "NCHW", contextSlices: 3, spatialMultiple: 4 },
  output: { name: "output", meaning: "hu-image" },
  intensity: { huMin: -1024, huMax: 3071, networkMin: -1, networkMax: 1 },
});

describe("slice batches", () => {
  it("map HU to CTA-GAN's [-1, 1] and back", () => {
    const toNet = huToNetwork(manifest);
    const toHu = networkToHu(manifest);
    expect(toNet(-1024)).toBe(-1);
    expect(toNet(3071)).toBe(1);
    expect(toNet(-3000)).toBe(-1); // clipped
    expect(toHu(toNet(40))).toBeCloseTo(40, 6);
  });

  it("stack neighbouring slices as channels, repeat the edge slice, pad with air", () => {
    const shape = { slices: 2, rows: 3, columns: 3 };
    const hu = new Float32Array(18);
    hu.fill(0, 0, 9);
    hu.fill(1000, 9, 18);
    const geometry = networkGeometry(manifest, shape);
    expect(geometry).toEqual({ rows: 4, columns: 4, channels: 3 });
    const tensor = new Float32Array(2 * 3 * 16);
    fillInputBatch(manifest, hu, shape, geometry, 0, 2, tensor);
    const toNet = huToNetwork(manifest);
    const at = (n: number, c: number, r: number, col: number) => tensor[((n * 3 + c) * 4 + r) * 4 + col]!;
    expect(at(0, 0, 0, 0)).toBeCloseTo(toNet(0)); // slice -1 -> slice 0
    expect(at(0, 2, 1, 1)).toBeCloseTo(toNet(1000)); // next slice
    expect(at(1, 2, 1, 1)).toBeCloseTo(toNet(1000)); // slice 2 -> slice 1
    expect(at(0, 1, 3, 3)).toBe(-1); // padding
  });

  it("crop the padding and map the output back to HU", () => {
    const shape = { slices: 1, rows: 3, columns: 3 };
    const geometry = networkGeometry(manifest, shape);
    const output = new Float32Array(16).fill(huToNetwork(manifest)(100));
    const out = new Float32Array(9);
    readOutputBatch(manifest, output, shape, geometry, 0, 1, out);
    for (const v of out) expect(v).toBeCloseTo(100, 3);
  });

  it("refuse a series of another size than a fixed-size model takes", () => {
    const fixed = { ...manifest, input: { ...manifest.input, size: [512, 512] as [number, number] } };
    expect(() => networkGeometry(fixed, { slices: 1, rows: 256, columns: 256 })).toThrow(/takes 512x512 .* has 256x256/);
  });
});
