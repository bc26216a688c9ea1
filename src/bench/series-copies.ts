/**
 * Copies of a real series as new arrivals: every instance rewritten with a new StudyInstanceUID, SeriesInstanceUID
 * and SOPInstanceUID (and the file meta's MediaStorageSOPInstanceUID), pixels and geometry untouched, written to a
 * folder per copy. To Orthanc and to ct-enhance each copy is a series never seen before. Or one long series made of
 * the same real slices stacked end to end (a 2000-slice series from a 261-slice one), each at its own position.
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

/**
 * One series of `slices` instances: the real slices of `files` (given in position order, evenly spaced) repeated end
 * to end, each repeat continuing along the slice axis from where the last ended, so the stack is one evenly spaced
 * volume of real pixels (the anatomy repeats). New Study, Series and SOP Instance UIDs; InstanceNumber and
 * SliceLocation follow the new positions. Files are written one at a time (a 2000-slice 512x512 stack is ~1 GiB).
 */
export function writeStackedSeries(files: string[], slices: number, folder: string): SeriesCopy {
  const sources = files.map((file) => {
    const bytes = readFileSync(file);
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  });
  const positionOf = (source: ArrayBuffer): number[] =>
    (data.DicomMessage.readFile(source, { untilTag: "7FE00010" }).dict["00200032"]?.Value ?? []).map(Number);
  const first = positionOf(sources[0]!);
  const second = positionOf(sources[1]!);
  if (first.length !== 3 || second.length !== 3) throw new Error("the series' slices need ImagePositionPatient to be stacked");
  const step = second.map((v, i) => v - first[i]!); // one slice along the axis, in the files' order
  mkdirSync(folder, { recursive: true });
  const study = randomUid();
  const series = randomUid();
  const written: string[] = [];
  for (let i = 0; i < slices; i += 1) {
    const message = data.DicomMessage.readFile(sources[i % sources.length]!);
    const sop = randomUid();
    setValue(message.dict, "0020000D", study);
    setValue(message.dict, "0020000E", series);
    setValue(message.dict, "00080018", sop);
    setValue(message.meta, "00020003", sop);
    const position = first.map((v, axis) => Number((v + step[axis]! * i).toFixed(3)));
    const element = message.dict["00200032"];
    if (element) element.Value = position;
    const number = message.dict["00200013"];
    if (number) number.Value = [i + 1];
    const location = message.dict["00201041"];
    if (location) location.Value = [position[2]!];
    const file = path.join(folder, `${String(i).padStart(5, "0")}.dcm`);
    writeFileSync(file, new Uint8Array(message.write()));
    written.push(file);
  }
  return { seriesInstanceUID: series, files: written };
}
