/**
 * The real worker thread and the reference model on the CPU, on a tiny volume: the message protocol, the provider
 * and precision reported, and that writing the output over the input gives the same output as a second volume.
 * Needs the compiled worker (`npm run build`).
 */
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { InferenceService } from "../../src/models/inference.js";
import { ModelRegistry } from "../../src/models/registry.js";

const repoRoot = path.resolve(import.meta.dirname, "../..");

describe("InferenceService (worker thread, CPU)", () => {
  const inference = new InferenceService("cpu", 1);
  afterAll(() => inference.close());

  it("runs the reference model in place and as a copy with the same result", async () => {
    const models = await ModelRegistry.load(path.join(repoRoot, "models"));
    const model = models.list().find((m) => m.manifest.task === "synthesis" && !m.manifest.input.size);
    expect(model, "a synthesis model of any slice size in models/").toBeDefined();
    const shape = { slices: 5, rows: 40, columns: 36 };
    const input = new Float32Array(shape.slices * shape.rows * shape.columns);
    for (let i = 0; i < input.length; i += 1) input[i] = ((i * 7919) % 2400) - 1000;

    const progress: number[] = [];
    const copy = await inference.run(model!, { ...shape, hu: input.slice() }, (done) => progress.push(done), { batchSize: 2 });
    expect(copy.provider).toBe("cpu");
    expect(copy.precision).toBe("fp32");
    expect(copy.fallbacks).toEqual([]);
    expect(copy.batchSize).toBe(2);
    expect(progress).toEqual([2, 4, 5]);
    expect(copy.hu).toEqual(input); // the input comes back untouched
    expect(copy.output).not.toEqual(input);
    expect(copy.output.every(Number.isFinite)).toBe(true);

    const inPlace = await inference.run(model!, { ...shape, hu: input.slice() }, undefined, { inPlace: true, batchSize: 3 });
    expect(inPlace.output).toBe(inPlace.hu);
    for (let i = 0; i < input.length; i += 97) expect(inPlace.output[i]).toBeCloseTo(copy.output[i]!, 2);
  });
});
