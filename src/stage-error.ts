/**
 * Errors as values a person can act on. Two kinds reach a job's record:
 * - an OperationalError is one a layer throws on purpose (Orthanc down, a series that forms no volume, a device out
 *   of memory): its message says what is wrong and `retryable` whether the same input may succeed later;
 * - anything else (a TypeError, an assertion) is a defect of ours: retrying cannot mend it, so it is not retried.
 * Each stage maps what it caught to a StageError (the stage it happened in, retryable, message, cause), which the
 * job ledger stores as it is. This file sits on the ground floor: every layer may throw an OperationalError, only
 * the pipeline knows about stages.
 */
export class OperationalError extends Error {
  override readonly name: string = "OperationalError";
  constructor(
    message: string,
    /** true when the same input may succeed later (Orthanc down, out of memory); false for bad input. */
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const Stage = {
  Select: "select",
  Fetch: "fetch",
  Volume: "volume",
  /** The anatomy probe and the intended-use judgement. */
  Probe: "probe",
  Infer: "infer",
  Write: "write",
  Store: "store",
} as const;
export type Stage = (typeof Stage)[keyof typeof Stage];

export class StageError extends OperationalError {
  override readonly name = "StageError";
  constructor(
    readonly stage: Stage,
    message: string,
    retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, retryable, options);
  }
}

/**
 * What was thrown inside `stage`, as a StageError: a StageError passes unchanged (it names its own stage), an
 * OperationalError keeps its message and retryability, anything else is a defect: not retryable, and its message
 * says so.
 */
export function asStageError(stage: Stage, error: unknown): StageError {
  if (error instanceof StageError) return error;
  if (error instanceof OperationalError) return new StageError(stage, error.message, error.retryable, { cause: error });
  const disk = diskRefusal(error);
  if (disk) return new StageError(stage, disk, true, { cause: error });
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new StageError(stage, `unexpected error (a defect of ct-enhance, not retried): ${message}`, false, { cause: error });
}

/** What the operating system's refusals of a write to our disk mean (Node's errno codes). */
const DISK_REFUSALS: Record<string, string> = {
  ENOSPC: "no space left on the disk",
  EDQUOT: "the disk quota is used up",
  EROFS: "the disk is read-only",
  EIO: "the disk reported an I/O error",
};

/** SQLite's codes for a write the disk refused (the ledger's own classification: src/jobs/ledger-health.ts). */
const SQLITE_DISK_REFUSAL = /^SQLITE_(READONLY|FULL|IOERR|CANTOPEN)/;

/**
 * A full, read-only or failing disk under the data folder (the spool, previews) is the machine's state, not a defect
 * and not the series' fault: the job is retried once a person has freed or mended the disk. On a really full disk
 * (tests/integration/disk-full.test.ts) the ledger's SQLITE_FULL, thrown by a progress write during inference, came
 * here as "a defect, not retried"; the spool names its own refusals (pipeline/outputs/held-instances.ts).
 */
function diskRefusal(error: unknown): string | undefined {
  const { code, path, message } = (error ?? {}) as { code?: unknown; path?: unknown; message?: unknown };
  if (typeof code === "string" && SQLITE_DISK_REFUSAL.test(code)) {
    return `the ledger's disk refused a write (${code}: ${String(message)}): free space on, or mend, the disk that holds CT_ENHANCE_DATA_DIR; retried with backoff`;
  }
  if (typeof code !== "string" || !(code in DISK_REFUSALS)) return undefined;
  const where = typeof path === "string" ? ` writing ${path}` : "";
  return `the disk refused a write (${code}: ${DISK_REFUSALS[code]})${where}: free space on, or mend, the disk that holds CT_ENHANCE_DATA_DIR; retried with backoff`;
}
