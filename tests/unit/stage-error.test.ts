/** What reaches a job's record from a failure: the stage, whether a retry can help, and why. */
import { open } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { VolumeError } from "../../src/dicom/dicom-errors.js";
import { DicomwebError } from "../../src/dicomweb/endpoint.js";
import { asStageError, Stage, StageError } from "../../src/stage-error.js";

describe("asStageError", () => {
  it("keeps a StageError's own stage, and gives an OperationalError the stage it was caught in with its retryability", () => {
    const own = new StageError(Stage.Write, "NaN in the output", false);
    expect(asStageError(Stage.Store, own)).toBe(own);
    expect(asStageError(Stage.Fetch, new DicomwebError("WADO-RS GET answered HTTP 503", true, 503)))
      .toMatchObject({ stage: Stage.Fetch, retryable: true, message: "WADO-RS GET answered HTTP 503" });
    expect(asStageError(Stage.Volume, new VolumeError("instance #3 has no PixelData")))
      .toMatchObject({ stage: Stage.Volume, retryable: false });
  });

  it("records anything else as a defect of ours, in the stage it happened in, not retried", () => {
    const bug = asStageError(Stage.Infer, new TypeError("Cannot read properties of undefined (reading 'length')"));
    expect(bug).toMatchObject({ stage: Stage.Infer, retryable: false });
    expect(bug.message).toMatch(/^unexpected error \(a defect of ct-enhance, not retried\): TypeError: Cannot read/);
    expect(asStageError(Stage.Store, "a string").message).toMatch(/a string$/);
  });

  it("records the disk's refusal of a write (a real ENOSPC from /dev/full) as retryable, saying what to free", async () => {
    const full = await open("/dev/full", "w");
    const refusal = await full.write(Buffer.alloc(4096)).then(() => undefined, (error: unknown) => error);
    await full.close();
    expect((refusal as { code?: string }).code).toBe("ENOSPC");
    const failure = asStageError(Stage.Write, refusal);
    expect(failure).toMatchObject({ stage: Stage.Write, retryable: true });
    expect(failure.message).toMatch(/^the disk refused a write \(ENOSPC: no space left on the disk\): free space on, or mend, the disk that holds CT_ENHANCE_DATA_DIR/);
    const readOnly = Object.assign(new Error("EROFS: read-only file system, open '/data/spool/7/0001.dcm'"), { code: "EROFS", path: "/data/spool/7/0001.dcm" });
    expect(asStageError(Stage.Write, readOnly).message).toContain("(EROFS: the disk is read-only) writing /data/spool/7/0001.dcm");
    expect(asStageError(Stage.Write, Object.assign(new Error("x"), { code: "ENOENT" })).retryable).toBe(false);
    const ledgerFull = asStageError(Stage.Infer, Object.assign(new Error("database or disk is full"), { code: "SQLITE_FULL" }));
    expect(ledgerFull).toMatchObject({ stage: Stage.Infer, retryable: true });
    expect(ledgerFull.message).toMatch(/^the ledger's disk refused a write \(SQLITE_FULL: database or disk is full\)/);
    expect(asStageError(Stage.Infer, Object.assign(new Error("UNIQUE"), { code: "SQLITE_CONSTRAINT_UNIQUE" })).retryable).toBe(false);
  });
});
