/**
 * Stage fetch + volume: the series over WADO-RS (Orthanc transcodes compressed syntaxes to Explicit VR Little
 * Endian), parsed instance by instance as the parts arrive, into one HU volume with its geometry checked.
 */
import type { CtVolume } from "../../dicom/ct-volume.js";
import { assembleVolume } from "../../dicom/volume.js";
import type { DicomwebEndpoint } from "../../dicomweb/endpoint.js";
import { retrieveSeries } from "../../dicomweb/wado-rs.js";
import { asStageError, Stage } from "../stage-error.js";

export async function fetchVolume(
  endpoint: DicomwebEndpoint,
  studyInstanceUID: string,
  seriesInstanceUID: string,
): Promise<CtVolume> {
  try {
    return await assembleVolume(retrieveSeries(endpoint, studyInstanceUID, seriesInstanceUID));
  } catch (error) {
    // Errors from the transfer itself arrive as StageError(fetch); anything else is about the data.
    throw asStageError(Stage.Volume, error, false);
  }
}
