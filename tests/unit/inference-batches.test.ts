import { describe, expect, it } from "vitest";
import { ModelManifest } from "../../src/models/manifest.js";
import {
  type BatchSession,
  fromFloat16Bits,
  huToNetwork,
  networkToHu,
  runSliceBatches,
  toFloat16Bits,
} from "../../src/models/slice-batches.js";
import { ANY_CT } from "../helpers/manifest-fields.js";

/** 2.5D (3 slices of context), padded to a multiple of 4: enough to catch a wrong batch, offset or in-place order. */
const manifest = ModelManifest.parse({
  ...ANY_CT,
  id: "t", version: "1", task: "synthesis", name: "test", file: "t.onnx", sha256: "0".repeat(64),
  input: { name: "input", layout: "NCHW", contextSlices: 3, spatialMultiple: 4 },
  output: { name: "output", meaning: "hu-image" },
  intensity: { huMin: -1024, huMax: 3071, networkMin: -1, networkMax: 1 },
  batchSize: 8,
});
const shape = { slices: 13, rows: 3, columns: 5 };

function volume(): Float32Array {
  const hu = new Float32Array(shape.slices * shape.rows * shape.columns);
  for (let i = 0; i < hu.length; i += 1) hu[i] = ((i * 37) % 400) - 200;
  return hu;
}

/** What the fake network computes: the mean of the three context slices, per voxel. */
function expected(hu: Float32Array): Float32Array {
  const plane = shape.rows * shape.columns;
  const toNet = huToNetwork(manifest);
  const toHu = networkToHu(manifest);
  const out = new Float32Array(hu.length);
  for (let k = 0; k < shape.slices; k += 1) {
    for (let p = 0; p < plane; p += 1) {
      let sum = 0;
      for (const d of [-1, 0, 1]) sum += toNet(hu[Math.min(shape.slices - 1, Math.max(0, k + d)) * plane + p]!);
      out[k * plane + p] = toHu(sum / 3);
    }
  }
  return out;
}

interface FakeOptions {
  provider: string;
  /** Batches larger than this fail with an out-of-memory message. */
  maxBatch: number;
  failWith?: string;
}

function fakeSession(options: FakeOptions, calls: string[]): BatchSession {
  return {
    provider: options.provider,
    async runBatch(input, dims) {
      const [n, c, h, w] = dims as [number, number, number, number];
      calls.push(`${options.provider}:${n}`);
      if (options.failWith) throw new Error(options.failWith);
      if (n > options.maxBatch) {
        throw new Error(`[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : CUDA failure 2: out of memory ; GPU=0`);
      }
      expect(input.length).toBe(n * c * h * w);
      const out = new Float32Array(n * h * w);
      for (let b = 0; b < n; b += 1) {
        for (let p = 0; p < h * w; p += 1) {
          let sum = 0;
          for (let j = 0; j < c; j += 1) sum += input[(b * c + j) * h * w + p]!;
          out[b * h * w + p] = sum / c;
        }
      }
      return out;
    },
  };
}

describe("runSliceBatches", () => {
  it("runs every slice once, in batches of the manifest's size, and maps the output back to HU", async () => {
    const calls: string[] = [];
    const hu = volume();
    const want = expected(hu);
    const result = await runSliceBatches({
      manifest, hu, shape, output: "over-input",
      session: fakeSession({ provider: "cpu", maxBatch: 64 }, calls),
      openCpu: () => Promise.reject(new Error("not expected")),
    });
    expect(calls).toEqual(["cpu:8", "cpu:5"]);
    expect(result.provider).toBe("cpu");
    expect(result.fallbacks).toEqual([]);
    expect(result.output).toBe(hu);
    result.output!.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 2));
  });

  it("halves the batch when the GPU runs out of memory and stays on the GPU", async () => {
    const calls: string[] = [];
    const hu = volume();
    const want = expected(hu);
    const progress: number[] = [];
    const result = await runSliceBatches({
      manifest, hu, shape, output: "over-input",
      session: fakeSession({ provider: "cuda", maxBatch: 2 }, calls),
      openCpu: () => Promise.reject(new Error("must not fall back to the CPU while a smaller batch fits")),
      onProgress: (done) => progress.push(done),
    });
    expect(calls.slice(0, 3)).toEqual(["cuda:8", "cuda:4", "cuda:2"]);
    expect(result.provider).toBe("cuda");
    expect(result.batchSize).toBe(2);
    expect(result.fallbacks).toEqual(["cuda out of memory at batch 8: batch 4", "cuda out of memory at batch 4: batch 2"]);
    expect(progress.at(-1)).toBe(shape.slices);
    result.output!.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 2));
  });

  it("falls back to the CPU, at the CPU batch size, when even batch 1 does not fit on the GPU", async () => {
    const calls: string[] = [];
    let cpuOpened = 0;
    const hu = volume();
    const want = expected(hu);
    const result = await runSliceBatches({
      manifest, hu, shape, batchSize: 4, cpuBatchSize: 3, output: "over-input",
      session: fakeSession({ provider: "webgpu", maxBatch: 0 }, calls),
      openCpu: async () => {
        cpuOpened += 1;
        return fakeSession({ provider: "cpu", maxBatch: 64 }, calls);
      },
    });
    expect(cpuOpened).toBe(1);
    expect(calls).toEqual(["webgpu:4", "webgpu:2", "webgpu:1", "cpu:3", "cpu:3", "cpu:3", "cpu:3", "cpu:1"]);
    expect(result.provider).toBe("cpu");
    expect(result.fallbacks.at(-1)).toBe("webgpu out of memory at batch 1: cpu, batch 3");
    result.output!.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 2));
  });

  it("starts a CPU session at the CPU batch size, a GPU session at the full one", async () => {
    const cpuCalls: string[] = [];
    await runSliceBatches({
      manifest, hu: volume(), shape, cpuBatchSize: 2, output: "over-input",
      session: fakeSession({ provider: "cpu", maxBatch: 64 }, cpuCalls),
      openCpu: () => Promise.reject(new Error("not expected")),
    });
    expect(cpuCalls).toEqual(["cpu:2", "cpu:2", "cpu:2", "cpu:2", "cpu:2", "cpu:2", "cpu:1"]);
    const gpuCalls: string[] = [];
    await runSliceBatches({
      manifest, hu: volume(), shape, cpuBatchSize: 2, output: "over-input",
      session: fakeSession({ provider: "cuda", maxBatch: 64 }, gpuCalls),
      openCpu: () => Promise.reject(new Error("not expected")),
    });
    expect(gpuCalls).toEqual(["cuda:8", "cuda:5"]);
  });

  it("gives up (throws) when the CPU is out of memory at batch 1, and never retries other errors", async () => {
    await expect(runSliceBatches({
      manifest, hu: volume(), shape, output: "over-input",
      session: fakeSession({ provider: "cpu", maxBatch: 0 }, []),
      openCpu: () => Promise.reject(new Error("not expected")),
    })).rejects.toThrow(/out of memory/);

    const calls: string[] = [];
    await expect(runSliceBatches({
      manifest, hu: volume(), shape, output: "over-input",
      session: fakeSession({ provider: "cuda", maxBatch: 64, failWith: "Got invalid dimensions for input: input" }, calls),
      openCpu: () => Promise.reject(new Error("not expected")),
    })).rejects.toThrow(/invalid dimensions/);
    expect(calls).toEqual(["cuda:8"]);
  });

  it("over the input: the same output as streamed, 2.5D context read before it is overwritten", async () => {
    for (const batchSize of [1, 2, 5, 8, 20]) {
      const hu = volume();
      const want = expected(hu);
      const result = await runSliceBatches({
        manifest, hu, shape, batchSize, output: "over-input",
        session: fakeSession({ provider: "cuda", maxBatch: 3 }, []),
        openCpu: () => Promise.reject(new Error("not expected")),
      });
      expect(result.output).toBe(hu);
      result.output!.forEach((v, i) => expect(v, `batch ${batchSize}, voxel ${i}`).toBeCloseTo(want[i]!, 2));
    }
  });

  it("streamed: hands each batch over in slice order, arrays of their own, and keeps no output volume", async () => {
    const hu = volume();
    const want = expected(hu);
    const plane = shape.rows * shape.columns;
    const batches: { first: number; values: Float32Array }[] = [];
    const result = await runSliceBatches({
      manifest, hu, shape, batchSize: 4,
      // Out of memory at 4 on the "GPU": the same slices again at 2; what is streamed must not repeat or skip any.
      session: fakeSession({ provider: "cuda", maxBatch: 2 }, []),
      openCpu: () => Promise.reject(new Error("not expected")),
      output: { stream: (first, values) => void batches.push({ first, values }) },
    });
    expect(result.output).toBeUndefined();
    expect(batches.map((b) => [b.first, b.values.length / plane])).toEqual([[0, 2], [2, 2], [4, 2], [6, 2], [8, 2], [10, 2], [12, 1]]);
    expect(new Set(batches.map((b) => b.values.buffer)).size).toBe(batches.length);
    for (const { first, values } of batches) {
      values.forEach((v, i) => expect(v, `slice ${first}, voxel ${i}`).toBeCloseTo(want[first * plane + i]!, 2));
    }
    expect(hu).toEqual(volume()); // a streamed run leaves the input as it was
  });
});

describe("float16 conversion (fp16 model variants)", () => {
  it("round-trips values a half can hold and rounds the others to the nearest half", () => {
    const values = new Float32Array([0, -0, 1, -2, 0.5, 65504, 1 / 3, 1e-8, 70000, -70000, 6e-5, 2 ** -24]);
    const bits = toFloat16Bits(values);
    expect(bits[2]).toBe(0x3c00);
    expect(bits[3]).toBe(0xc000);
    expect(bits[5]).toBe(0x7bff);
    expect(bits[6]).toBe(0x3555); // 1/3 rounds to 0x3555
    expect(bits[8]).toBe(0x7c00); // overflow -> +inf
    expect(bits[9]).toBe(0xfc00);
    const back = fromFloat16Bits(bits);
    expect(Array.from(back.slice(0, 6))).toEqual([0, -0, 1, -2, 0.5, 65504]);
    expect(back[6]).toBeCloseTo(1 / 3, 3);
    expect(back[7]).toBe(0);
    expect(back[10]).toBeCloseTo(6e-5, 7); // subnormal half
    expect(back[11]).toBe(2 ** -24); // smallest subnormal
    expect(Number.isNaN(fromFloat16Bits(toFloat16Bits(new Float32Array([Number.NaN])))[0])).toBe(true);
  });
});
