/**
 * A model that hangs: the worker's stall fault hook blocks the thread for a 7-slice volume. The run fails at its
 * deadline as retryable, the stuck worker is let go, and the next run gets a new worker that answers.
 */
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { InferenceService } from "../../src/models/inference.js";
import { ModelRegistry } from "../../src/models/registry.js";

const repoRoot = path.resolve(import.meta.dirname, "../..");

describe("InferenceService deadline (worker thread, CPU)", () => {
  process.env.CT_ENHANCE_FAULT_STALL_INFERENCE_SLICES = "7";
  process.env.CT_ENHANCE_FAULT_STALL_INFERENCE_MS = "20000";
  const inference = new InferenceService("cpu", 1);
  afterAll(async () => {
    delete process.env.CT_ENHANCE_FAULT_STALL_INFERENCE_SLICES;
    delete process.env.CT_ENHANCE_FAULT_STALL_INFERENCE_MS;
    await inference.close();
  });

  it("fails a stuck run at its deadline (retryable) and replaces the worker for the next run", async () => {
    const models = await ModelRegistry.load(path.join(repoRoot, "models"));
    const model = models.list().find((m) => m.manifest.task === "synthesis" && !m.manifest.input.size)!;
    const volume = (slices: number) => ({ slices, rows: 32, columns: 32, hu: new Float32Array(slices * 32 * 32).fill(-500) });
    const deadline = { ms: 1500, text: "the infer stage's timeout of 1.5 s (test)" };
    const started = Date.now();
    const stuck = await inference.run(model, volume(7), "over-input", { deadline }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(stuck).toMatchObject({ retryable: true });
    expect((stuck as Error).message).toBe("no answer from the inference worker within the infer stage's timeout of 1.5 s (test); the worker was replaced");
    const next = await inference.run(model, volume(3), "over-input", { deadline: { ...deadline, ms: 60_000 } });
    expect(next.output).toHaveLength(3 * 32 * 32);
  }, 60_000);
});

/**
 * The same deadline hit while onnxruntime is inside session.run (a real model on a volume that takes seconds, no
 * fault hook): the worker is asked to end itself, not terminated. Terminating it there made the binding throw a C++
 * Napi::Error when the call returned, which aborted the whole process (the service, here the test's own process).
 */
describe("InferenceService deadline inside a native call", () => {
  const inference = new InferenceService("cpu", 1);
  afterAll(() => inference.close());

  it("lets the stuck worker end itself after its call returns: the process lives and the next run answers", async () => {
    const models = await ModelRegistry.load(path.join(repoRoot, "models"));
    const model = models.get("syncta-unet-small");
    const volume = (slices: number, size: number) => ({ slices, rows: size, columns: size, hu: new Float32Array(slices * size * size).fill(40) });
    const deadline = { ms: 300, text: "a 0.3 s timeout (test)" };
    const overrun = await inference.run(model, volume(8, 512), "over-input", { deadline }).catch((e: unknown) => e);
    expect(overrun).toMatchObject({ retryable: true });
    // Long enough for the replaced worker's session.run to return (and, before the fix, for the abort to happen).
    await new Promise((resolve) => setTimeout(resolve, 8000));
    const next = await inference.run(model, volume(2, 64), "over-input", { deadline: { ...deadline, ms: 60_000 } });
    expect(next.output).toHaveLength(2 * 64 * 64);
  }, 60_000);
});
