/**
 * Errors as values a person can act on: which stage failed, whether trying again can help, and why.
 * Every stage throws StageError; the job ledger stores stage, retryable and message as they are.
 */
export const Stage = {
  Select: "select",
  Fetch: "fetch",
  Volume: "volume",
  Infer: "infer",
  Write: "write",
  Store: "store",
} as const;
export type Stage = (typeof Stage)[keyof typeof Stage];

export class StageError extends Error {
  override readonly name = "StageError";
  constructor(
    readonly stage: Stage,
    message: string,
    /** true when the same input may succeed later (Orthanc down, out of memory); false for bad input. */
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Wraps anything thrown inside a stage; a StageError passes through unchanged. */
export function asStageError(stage: Stage, error: unknown, retryable: boolean): StageError {
  if (error instanceof StageError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new StageError(stage, message, retryable, { cause: error });
}
