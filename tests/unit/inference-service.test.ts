/**
 * The real worker thread and the reference model on the CPU, on a tiny volume: the message protocol, the provider
 * and precision reported, and that the output written over the input is the output streamed.
 * Needs the compiled worker (`npm run build`).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { InferenceService } from "../../src/models/inference.js";
import { ModelRegistry } from "../../src/models/registry.js";

const repoRoot = path.resolve(import.meta.dirname, "../..");

describe("InferenceService (worker thread, CPU)", () => {
  const inference = new InferenceService("cpu", 1);
  afterAll(() => inference.close());

  it("runs the reference model streamed and over the input, with the same result", async () => {
    const models = await ModelRegistry.load(path.join(repoRoot, "models"));
    const model = models.list().find((m) => m.manifest.task === "synthesis" && !m.manifest.input.size);
    expect(model, "a synthesis model of any slice size in models/").toBeDefined();
    const shape = { slices: 5, rows: 40, columns: 36 };
    const input = new Float32Array(shape.slices * shape.rows * shape.columns);
    for (let i = 0; i < input.length; i += 1) input[i] = ((i * 7919) % 2400) - 1000;

    const progress: number[] = [];
    const plane = shape.rows * shape.columns;
    const streamed = new Float32Array(input.length);
    const batches: number[] = [];
    const summary = await inference.run(model!, { ...shape, hu: input.slice() }, {
      streamTo: (first, values) => {
        batches.push(first);
        streamed.set(values, first * plane);
      },
    }, { onProgress: (done) => progress.push(done), batchSize: 2 });
    expect(summary.provider).toBe("cpu");
    expect(summary.precision).toBe("fp32");
    expect(summary.fallbacks).toEqual([]);
    expect(summary.batchSize).toBe(2);
    expect(progress).toEqual([2, 4, 5]);
    expect(batches).toEqual([0, 2, 4]);
    expect(streamed).not.toEqual(input);
    expect(streamed.every(Number.isFinite)).toBe(true);

    const hu = input.slice();
    const overInput = await inference.run(model!, { ...shape, hu }, "over-input", { batchSize: 3 });
    expect(hu.byteLength).toBe(0); // transferred to the worker
    expect(overInput.output).toHaveLength(input.length);
    for (let i = 0; i < input.length; i += 97) expect(overInput.output[i]).toBeCloseTo(streamed[i]!, 2);
  });

  it("fails the run with what a listener threw (a ledger write refused by a full disk), and the next run works", async () => {
    const models = await ModelRegistry.load(path.join(repoRoot, "models"));
    const model = models.list().find((m) => m.manifest.task === "synthesis" && !m.manifest.input.size)!;
    const shape = { slices: 4, rows: 32, columns: 32 };
    const volume = () => ({ ...shape, hu: new Float32Array(shape.slices * shape.rows * shape.columns).fill(40) });
    const full = Object.assign(new Error("database or disk is full"), { code: "SQLITE_FULL" });
    let calls = 0;
    const failed = inference.run(model, volume(), { streamTo: () => undefined }, {
      batchSize: 1,
      onProgress: () => {
        calls += 1;
        throw full;
      },
    });
    await expect(failed).rejects.toBe(full); // before this, the throw ended the process from the worker's message event
    expect(calls).toBe(1); // the listener is not called again once it has thrown
    const batches: number[] = [];
    await inference.run(model, volume(), { streamTo: (first) => batches.push(first) }, { batchSize: 2 });
    expect(batches).toEqual([0, 2]);
  });

  it("feeds a noise-level denoiser the measured noise as its second channel, and refuses to run without one", async () => {
    const models = await ModelRegistry.load(path.join(repoRoot, "models"));
    const model = models.list().find((m) => m.manifest.input.noiseLevel !== undefined);
    expect(model, "a model with input.noiseLevel in models/ (denoise-ffdnet-small v2)").toBeDefined();
    const shape = { slices: 2, rows: 32, columns: 30 };
    const input = new Float32Array(shape.slices * shape.rows * shape.columns);
    for (let i = 0; i < input.length; i += 1) input[i] = 40 + 60 * Math.sin(i * 12.9898) * Math.cos(i * 78.233); // noisy tissue
    const sd = (v: Float32Array) => {
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      return Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
    };
    const quiet = await inference.run(model!, { ...shape, hu: input.slice() }, "over-input", { noiseHu: 20 });
    const loud = await inference.run(model!, { ...shape, hu: input.slice() }, "over-input", { noiseHu: 80 });
    expect(quiet.output.every(Number.isFinite)).toBe(true);
    // The map changes what the network does (FFDNet: a higher level removes more).
    expect(sd(loud.output)).toBeLessThan(sd(quiet.output));
    await expect(inference.run(model!, { ...shape, hu: input.slice() }, "over-input"))
      .rejects.toMatchObject({ retryable: false, message: expect.stringMatching(/measured image noise .* none was measured/) });
  });
});

describe("fp16 model variants (CT_ENHANCE_PRECISION)", () => {
  /** A smooth body-like HU pattern: air outside a disk, soft tissue and a brighter structure inside. */
  function phantom(shape: { slices: number; rows: number; columns: number }): Float32Array {
    const hu = new Float32Array(shape.slices * shape.rows * shape.columns);
    for (let k = 0; k < shape.slices; k += 1) {
      for (let r = 0; r < shape.rows; r += 1) {
        for (let c = 0; c < shape.columns; c += 1) {
          const d = Math.hypot(r - shape.rows / 2, c - shape.columns / 2);
          const inside = d < shape.rows * 0.4;
          hu[(k * shape.rows + r) * shape.columns + c] = !inside ? -1000 : d < 6 + k ? 300 : 40 + 20 * Math.sin(r / 3);
        }
      }
    }
    return hu;
  }

  it("runs the manifest's fp16 file when asked, within a few HU of fp32; auto keeps fp32 on the CPU", async () => {
    const models = await ModelRegistry.load(path.join(repoRoot, "models"));
    const model = models.get("syncta-unet-small");
    expect(model.manifest.fp16, "syncta-unet-small ships an fp16 variant").toBeDefined();
    const shape = { slices: 3, rows: 64, columns: 64 };
    const auto = new InferenceService("cpu", 1, "auto");
    const half = new InferenceService("cpu", 1, "fp16");
    try {
      const fp32 = await auto.run(model, { ...shape, hu: phantom(shape) }, "over-input");
      const fp16 = await half.run(model, { ...shape, hu: phantom(shape) }, "over-input");
      expect(fp32.precision).toBe("fp32");
      expect(fp16.precision).toBe("fp16");
      let max = 0;
      let sum = 0;
      for (let i = 0; i < fp32.output.length; i += 1) {
        const d = Math.abs(fp32.output[i]! - fp16.output[i]!);
        max = Math.max(max, d);
        sum += d;
      }
      console.info(`fp16 vs fp32 on the phantom: max ${max.toFixed(2)} HU, mean ${(sum / fp32.output.length).toFixed(3)} HU`);
      expect(max).toBeGreaterThan(0); // a different file did run
      expect(max).toBeLessThan(8);
      expect(sum / fp32.output.length).toBeLessThan(1);
    } finally {
      await auto.close();
      await half.close();
    }
  });

  it("keeps to fp32 when the fp16 file is not the one the manifest names (sha256)", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "ct-enhance-models-"));
    cpSync(path.join(repoRoot, "models"), dir, { recursive: true });
    const manifestFile = path.join(dir, "syncta-unet-small.json");
    const manifest = JSON.parse(readFileSync(manifestFile, "utf8"));
    manifest.fp16.sha256 = "0".repeat(64);
    writeFileSync(manifestFile, JSON.stringify(manifest));
    const model = (await ModelRegistry.load(dir)).get("syncta-unet-small");
    const half = new InferenceService("cpu", 1, "fp16");
    try {
      const shape = { slices: 1, rows: 32, columns: 32 };
      expect((await half.run(model, { ...shape, hu: phantom(shape) }, "over-input")).precision).toBe("fp32");
    } finally {
      await half.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
