/**
 * Stage fetch + volume: the series over WADO-RS (Orthanc transcodes compressed syntaxes to Explicit VR Little
 * Endian), parsed and converted to HU instance by instance as the parts arrive, into one volume with its geometry
 * checked.
 */
import type { CtVolume } from "../../dicom/ct-volume.js";
import { assembleVolume } from "../../dicom/volume.js";
import type { DicomwebEndpoint } from "../../dicomweb/endpoint.js";
import { DicomwebError } from "../../dicomweb/endpoint.js";
import { retrieveSeries } from "../../dicomweb/wado-rs.js";
import { asStageError, Stage } from "../../stage-error.js";

export async function fetchVolume(
  endpoint: DicomwebEndpoint,
  studyInstanceUID: string,
  seriesInstanceUID: string,
  /** Orthanc's instance count, if known: the volume is then allocated once, at its size. */
  expectedSlices?: number,
  /** Aborts the transfer (the stage's deadline). */
  signal?: AbortSignal,
): Promise<CtVolume> {
  try {
    const parts = retrieveSeries(endpoint, studyInstanceUID, seriesInstanceUID, signal ? { signal } : {});
    return await assembleVolume(parts, expectedSlices && expectedSlices > 0 ? { expectedSlices } : {});
  } catch (error) {
    // The transfer's own errors are the fetch stage's; anything else happened while the volume was assembled.
    throw asStageError(error instanceof DicomwebError ? Stage.Fetch : Stage.Volume, error);
  }
}
