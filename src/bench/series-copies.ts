/**
 * Copies of a real series as new arrivals: every instance rewritten with a new StudyInstanceUID, SeriesInstanceUID
 * and SOPInstanceUID (and the file meta's MediaStorageSOPInstanceUID), pixels and geometry untouched, written to a
 * folder per copy. To Orthanc and to ct-enhance each copy is a series never seen before.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { data } from "dcmjs";
import { randomUid } from "../dicom/uid.js";

export interface SeriesCopy {
  seriesInstanceUID: string;
  files: string[];
}

function setValue(dict: Record<string, { Value?: unknown[] }>, tag: string, value: string): void {
  const element = dict[tag];
  if (element) element.Value = [value];
}

/** `copies` copies of `files` under `folder` (copy-000/, copy-001/, ...). */
export function writeSeriesCopies(files: string[], copies: number, folder: string): SeriesCopy[] {
  const sources = files.map((file) => {
    const bytes = readFileSync(file);
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  });
  const result: SeriesCopy[] = [];
  for (let c = 0; c < copies; c += 1) {
    const dir = path.join(folder, `copy-${String(c).padStart(3, "0")}`);
    mkdirSync(dir, { recursive: true });
    const study = randomUid();
    const series = randomUid();
    const written: string[] = [];
    for (const [i, source] of sources.entries()) {
      const message = data.DicomMessage.readFile(source);
      const sop = randomUid();
      setValue(message.dict, "0020000D", study);
      setValue(message.dict, "0020000E", series);
      setValue(message.dict, "00080018", sop);
      setValue(message.meta, "00020003", sop);
      const file = path.join(dir, `${String(i).padStart(4, "0")}.dcm`);
      writeFileSync(file, new Uint8Array(message.write()));
      written.push(file);
    }
    result.push({ seriesInstanceUID: series, files: written });
  }
  return result;
}
