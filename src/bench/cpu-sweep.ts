/**
 * CPU ms per slice of a model for each (intra-op threads, batch size) pair, on real slices: which default suits a
 * small CPU-only node. Each pair gets its own warmed worker; the first batch is not timed.
 */
import { InferenceService } from "../models/inference.js";
import type { RegisteredModel } from "../models/registry.js";

export interface SweepPoint {
  cpuThreads: number;
  batchSize: number;
  slices: number;
  /** Wall-clock ms per slice (disturbed by whatever else runs on the machine). */
  msPerSlice: number;
  /** CPU time of the whole process (all threads) per slice: what the model costs, whatever the load. */
  cpuMsPerSlice: number;
}

export async function cpuSweep(
  model: RegisteredModel,
  volume: { hu: Float32Array; slices: number; rows: number; columns: number },
  threads: number[],
  batches: number[],
): Promise<SweepPoint[]> {
  const points: SweepPoint[] = [];
  for (const cpuThreads of threads) {
    for (const batchSize of batches) {
      const inference = new InferenceService("cpu", cpuThreads);
      try {
        await inference.warmup(model);
        // One untimed batch at this size (allocations, kernel choice), then the timed pass.
        const plane = volume.rows * volume.columns;
        const first = { ...volume, slices: batchSize, hu: volume.hu.slice(0, batchSize * plane) };
        await inference.run(model, first, "over-input", { batchSize });
        const timed = { ...volume, hu: volume.hu.slice() };
        const cpu = process.cpuUsage();
        const result = await inference.run(model, timed, "over-input", { batchSize });
        const used = process.cpuUsage(cpu);
        points.push({
          cpuThreads,
          batchSize,
          slices: volume.slices,
          msPerSlice: result.inferenceMs / volume.slices,
          cpuMsPerSlice: (used.user + used.system) / 1000 / volume.slices,
        });
      } finally {
        await inference.close();
      }
    }
  }
  return points;
}
