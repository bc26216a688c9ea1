/**
 * A series for evaluation, from wherever it is: a folder of DICOM files on disk, or a series in the configured Orthanc
 * (its Orthanc ID, or its SeriesInstanceUID), pulled over WADO-RS like the pipeline does. Either way it becomes the
 * same CtVolume the pipeline sees (assembleVolume: sorted along the normal, HU, geometry checked).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import type { CtVolume } from "../dicom/ct-volume.js";
import { assembleVolume } from "../dicom/volume.js";
import { retrieveSeries } from "../dicomweb/wado-rs.js";
import type { OrthancClient } from "../orthanc/rest.js";

const ORTHANC_ID = /^[0-9a-f]{8}(-[0-9a-f]{8}){4}$/;
const DICOM_UID = /^[0-9]+(\.[0-9]+)+$/;

/** Two slices are enough to compare; assembleVolume's default minimum (10) is for the pipeline. */
const MIN_SLICES = 2;

export interface LoadedSeries {
  volume: CtVolume;
  /** Where it came from, for the report: the folder, or "orthanc:<ID>". */
  source: string;
}

/** True when the bytes carry the Part-10 preamble ("DICM" at offset 128). */
function isPart10(bytes: Buffer): boolean {
  return bytes.length > 132 && bytes.toString("latin1", 128, 132) === "DICM";
}

/** Every Part-10 file directly in the folder (other files, e.g. DICOMDIR-less README or JSON, are ignored). */
export function readDicomFolder(folder: string): Uint8Array[] {
  const instances: Uint8Array[] = [];
  for (const name of readdirSync(folder).sort()) {
    const file = path.join(folder, name);
    if (!statSync(file).isFile()) continue;
    const bytes = readFileSync(file);
    if (isPart10(bytes) && name !== "DICOMDIR") instances.push(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }
  if (instances.length === 0) throw new Error(`${folder} holds no DICOM Part-10 files (with the DICM preamble)`);
  return instances;
}

async function orthancSeriesId(orthanc: OrthancClient, series: string): Promise<string> {
  if (ORTHANC_ID.test(series)) return series;
  const id = await orthanc.seriesIdOf(series);
  if (!id) throw new Error(`Orthanc has no series with SeriesInstanceUID ${series}`);
  return id;
}

/**
 * Loads `series`: an existing folder is read from disk; otherwise it must be an Orthanc series ID or a
 * SeriesInstanceUID, and `orthanc()` opens the client only then (so disk-only evaluations need no Orthanc).
 */
export async function loadSeries(series: string, orthanc: () => OrthancClient): Promise<LoadedSeries> {
  let isFolder = false;
  try {
    isFolder = statSync(series).isDirectory();
  } catch {
    isFolder = false;
  }
  if (isFolder) {
    return { volume: await assembleVolume(readDicomFolder(series), { minSlices: MIN_SLICES }), source: path.resolve(series) };
  }
  if (!ORTHANC_ID.test(series) && !DICOM_UID.test(series)) {
    throw new Error(`'${series}' is neither a folder of DICOM files nor an Orthanc series ID nor a SeriesInstanceUID`);
  }
  const client = orthanc();
  const id = await orthancSeriesId(client, series);
  const found = await client.series(id);
  if (!found) throw new Error(`Orthanc has no series ${id}`);
  const study = await client.study(found.ParentStudy);
  const studyUid = study?.MainDicomTags.StudyInstanceUID;
  const seriesUid = found.MainDicomTags.SeriesInstanceUID;
  if (!studyUid || !seriesUid) throw new Error(`Orthanc series ${id} lacks its StudyInstanceUID or SeriesInstanceUID`);
  const volume = await assembleVolume(retrieveSeries(client.dicomweb(), studyUid, seriesUid), { minSlices: MIN_SLICES });
  return { volume, source: `orthanc:${id}` };
}
