/**
 * FFDNet's noise-level input (manifest `input.noiseLevel`): the schema, the constant channel built from the probe's
 * measured noise, and a job without a measured noise failing with a reason a person can act on (never a guess).
 * Synthetic and fast: no model, no DICOM.
 */
import { describe, expect, it } from "vitest";
import { ModelManifest } from "../../src/models/manifest.js";
import {
  type BatchSession,
  fillInputBatch,
  huToNetwork,
  MissingNoiseLevelError,
  networkGeometry,
  noiseLevelValue,
  runSliceBatches,
} from "../../src/models/slice-batches.js";
import { noiseInput } from "../../src/pipeline/outputs/derived-series.js";
import type { RegisteredModel } from "../../src/models/registry.js";
import type { ProbedVolume } from "../../src/measure/anatomy-probe.js";
import { ANY_CT } from "../helpers/manifest-fields.js";

const base = {
  ...ANY_CT,
  id: "ffdnet", version: "1", task: "denoise", name: "test", file: "t.onnx", sha256: "0".repeat(64),
  output: { name: "output", meaning: "hu-image" },
  intensity: { huMin: -1024, huMax: 3071, networkMin: -1, networkMax: 1 },
};
const noiseLevel = { channel: 1, source: "measured-noise", scale: 0.01, trainedNoiseHu: { min: 15, max: 100 } };
const withNoise = ModelManifest.parse({
  ...base, input: { name: "input", layout: "NCHW", contextSlices: 1, spatialMultiple: 2, noiseLevel },
});
const withoutNoise = ModelManifest.parse({ ...base, input: { name: "input", layout: "NCHW", contextSlices: 1, spatialMultiple: 2 } });

describe("manifest input.noiseLevel", () => {
  it("is optional: a manifest without it parses as before and feeds the image channels only", () => {
    expect(withoutNoise.input.noiseLevel).toBeUndefined();
    expect(networkGeometry(withoutNoise, { slices: 1, rows: 3, columns: 3 }).channels).toBe(1);
    expect(noiseLevelValue(withoutNoise, undefined)).toBeUndefined();
  });

  it("adds one channel after the image channels", () => {
    expect(withNoise.input.noiseLevel).toEqual(noiseLevel);
    expect(networkGeometry(withNoise, { slices: 1, rows: 3, columns: 3 })).toEqual({ rows: 4, columns: 4, channels: 2 });
  });

  it("refuses a channel that does not follow the image channels, an unknown source and unknown keys", () => {
    const parse = (level: object, contextSlices = 1) => ModelManifest.safeParse({
      ...base, input: { name: "input", layout: "NCHW", contextSlices, noiseLevel: level },
    });
    const wrongChannel = parse({ ...noiseLevel, channel: 0 });
    expect(wrongChannel.success).toBe(false);
    if (!wrongChannel.success) expect(wrongChannel.error.issues[0]!.path.join(".")).toBe("input.noiseLevel.channel");
    expect(parse({ ...noiseLevel, channel: 3 }, 3).success).toBe(true);
    expect(parse({ ...noiseLevel, source: "header-ctdi" }).success).toBe(false);
    expect(parse({ ...noiseLevel, unit: "hu" }).success).toBe(false); // strict
    expect(parse({ ...noiseLevel, scale: 0 }).success).toBe(false);
  });
});

describe("the noise-level channel", () => {
  it("holds measured noise x scale in every pixel, padding included; the image channel is unchanged", () => {
    const shape = { slices: 2, rows: 3, columns: 3 };
    const hu = new Float32Array(18).fill(40);
    const geometry = networkGeometry(withNoise, shape);
    const tensor = new Float32Array(2 * 2 * 16);
    fillInputBatch(withNoise, hu, shape, geometry, 0, 2, tensor, noiseLevelValue(withNoise, 32.5));
    const at = (n: number, c: number, r: number, col: number) => tensor[((n * 2 + c) * 4 + r) * 4 + col]!;
    for (const n of [0, 1]) {
      for (let r = 0; r < 4; r += 1) for (let c = 0; c < 4; c += 1) expect(at(n, 1, r, c)).toBeCloseTo(0.325, 6);
      expect(at(n, 0, 1, 1)).toBeCloseTo(huToNetwork(withNoise)(40), 6);
      expect(at(n, 0, 3, 3)).toBe(-1); // image padding: air
    }
  });

  it("is never guessed: no measured noise (or a nonsense one) is an error that says what to do", () => {
    for (const bad of [undefined, 0, -3, Number.NaN]) {
      expect(() => noiseLevelValue(withNoise, bad)).toThrow(MissingNoiseLevelError);
    }
    expect(() => noiseLevelValue(withNoise, undefined)).toThrow(/takes the series' measured image noise .* none was measured.*homogeneous/);
    const shape = { slices: 1, rows: 2, columns: 2 };
    expect(() => fillInputBatch(withNoise, new Float32Array(4), shape, networkGeometry(withNoise, shape), 0, 1, new Float32Array(8)))
      .toThrow(MissingNoiseLevelError);
  });

  it("reaches the network in every batch, and a run without it fails before the first batch", async () => {
    const shape = { slices: 3, rows: 2, columns: 2 };
    const seen: number[][] = [];
    const session: BatchSession = {
      provider: "cpu",
      async runBatch(input, dims) {
        const [n, c, h, w] = dims as [number, number, number, number];
        expect(c).toBe(2);
        seen.push(Array.from({ length: n }, (_, b) => input[(b * c + 1) * h * w]!));
        return input.filter((_, i) => Math.floor(i / (h * w)) % c === 0); // the image channel back
      },
    };
    const run = (noiseHu?: number) => runSliceBatches({
      manifest: withNoise, hu: new Float32Array(12).fill(0), shape, output: "over-input", session, batchSize: 2,
      openCpu: () => Promise.reject(new Error("not expected")), ...(noiseHu === undefined ? {} : { noiseHu }),
    });
    const result = await run(48);
    expect(seen.flat().map((v) => Math.round(v * 1000) / 1000)).toEqual([0.48, 0.48, 0.48]);
    for (const v of result.output!) expect(v).toBeCloseTo(0, 3);
    seen.length = 0;
    await expect(run()).rejects.toThrow(MissingNoiseLevelError);
    expect(seen).toEqual([]);
  });

  it("is the probe's noiseHu in a job; without one the infer stage fails, not retryable, with the reason", () => {
    const model = { manifest: withNoise } as RegisteredModel;
    const probed = (noiseHu: number | undefined) => ({ probed: { probe: { noiseHu } } as unknown as ProbedVolume });
    expect(noiseInput(model, probed(41.2))).toEqual({ noiseHu: 41.2 });
    expect(noiseInput({ manifest: withoutNoise } as RegisteredModel, probed(undefined))).toEqual({});
    try {
      noiseInput(model, probed(undefined));
      throw new Error("expected a failure");
    } catch (error) {
      expect(error).toMatchObject({ stage: "infer", retryable: false });
      expect((error as Error).message).toMatch(/none was measured/);
    }
  });
});
