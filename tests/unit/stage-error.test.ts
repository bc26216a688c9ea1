/** What reaches a job's record from a failure: the stage, whether a retry can help, and why. */
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
});
