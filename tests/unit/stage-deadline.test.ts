import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { stageDeadline, StageTimeoutError, withinDeadline } from "../../src/pipeline/stage-deadline.js";
import { stallIfAsked } from "../../src/models/fault-stall.js";

const config = loadConfig(undefined, {
  CT_ENHANCE_FETCH_TIMEOUT_SECONDS: "2",
  CT_ENHANCE_FETCH_TIMEOUT_PER_SLICE_SECONDS: "0.25",
});

describe("stage timeouts", () => {
  it("scale with the slice count and name the stage and the config key", () => {
    const deadline = stageDeadline(config, "fetch", 20);
    expect(deadline.ms).toBe(7000);
    expect(deadline.text).toBe("the fetch stage's timeout of 7 s (2 s + 0.25 s x 20 slices, config stageTimeouts.fetch)");
    expect(stageDeadline(loadConfig(undefined, {}), "infer", 261).ms).toBe((300 + 10 * 261) * 1000);
  });

  it("fail as retryable in the stage, even when the work ignores its signal", async () => {
    const deadline = { ...stageDeadline(config, "store", 1), ms: 50 };
    const started = Date.now();
    const error = await withinDeadline(deadline, "storing", () => new Promise(() => undefined)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StageTimeoutError);
    expect(error).toMatchObject({ stage: "store", retryable: true });
    expect((error as Error).message).toMatch(/^storing took longer than the store stage's timeout of/);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("abort the work's signal, and a failure caused by the abort is the timeout", async () => {
    const deadline = { ...stageDeadline(config, "fetch", 1), ms: 20 };
    const error = await withinDeadline(deadline, "fetching", (signal) => new Promise((_, reject) => {
      signal.addEventListener("abort", () => reject(new Error("aborted")));
    })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StageTimeoutError);
  });

  it("pass the work's own answer and errors through", async () => {
    const deadline = stageDeadline(config, "fetch", 1);
    await expect(withinDeadline(deadline, "x", async () => 42)).resolves.toBe(42);
    await expect(withinDeadline(deadline, "x", async () => { throw new Error("own"); })).rejects.toThrow("own");
  });

  it("the stall fault hook is off unless its variable names the slice count", () => {
    const started = Date.now();
    stallIfAsked(20, {});
    stallIfAsked(20, { CT_ENHANCE_FAULT_STALL_INFERENCE_SLICES: "21" });
    stallIfAsked(21, { CT_ENHANCE_FAULT_STALL_INFERENCE_SLICES: "21", CT_ENHANCE_FAULT_STALL_INFERENCE_MS: "100" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
  });
});
