/**
 * What the DICOM layer refuses, as errors a person can act on (see stage-error.ts): the pipeline's stages map them
 * to the stage they happened in.
 */
import { OperationalError } from "../stage-error.js";

/**
 * The instances received do not form one CT volume: the message names the slice and what is wrong with it. Not
 * retryable (the same series will be refused again), except when the volume's memory could not be had.
 */
export class VolumeError extends OperationalError {
  override readonly name = "VolumeError";
  constructor(message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, options.retryable ?? false, options);
  }
}

/** A writer refused what it was asked to write (model output with NaN, a size that does not fit the volume). */
export class DicomWriteError extends OperationalError {
  override readonly name = "DicomWriteError";
  constructor(message: string) {
    super(message, false);
  }
}
