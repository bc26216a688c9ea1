/**
 * A fault hook for the hang tests, off unless its variable is set: a model that hangs. With
 * CT_ENHANCE_FAULT_STALL_INFERENCE_SLICES=21 (a comma list of slice counts), a run over a volume of that many slices
 * blocks the worker thread (as a native call that never returns would) for CT_ENHANCE_FAULT_STALL_INFERENCE_MS
 * (default 10 minutes), before any slice is computed. Nothing else reads these variables; the service's config does not
 * know them.
 */
export function stallIfAsked(slices: number, environment: NodeJS.ProcessEnv = process.env): void {
  const counts = (environment.CT_ENHANCE_FAULT_STALL_INFERENCE_SLICES ?? "").split(",").filter((t) => t.trim() !== "").map(Number);
  if (!counts.includes(slices)) return;
  const ms = Number(environment.CT_ENHANCE_FAULT_STALL_INFERENCE_MS ?? 600_000);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
