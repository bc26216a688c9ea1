/** The .dcm files of a series folder, and a contiguous run of its slices (by position) for shorter benchmarks. */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { data } from "dcmjs";

export function seriesFiles(folder: string): string[] {
  return readdirSync(folder).filter((f) => f.toLowerCase().endsWith(".dcm")).sort().map((f) => path.join(folder, f));
}

/** `count` neighbouring slices from the middle of the series, ordered along the slice normal; all files when absent. */
export function contiguousSlices(folder: string, count: number | undefined): string[] {
  const files = seriesFiles(folder);
  if (count === undefined || count >= files.length) return files;
  const placed = slicesInPositionOrder(files);
  const from = Math.floor((placed.length - count) / 2);
  return placed.slice(from, from + count);
}

/** The files ordered along the slice normal. */
export function slicesInPositionOrder(files: string[]): string[] {
  const placed = files.map((file) => {
    const bytes = readFileSync(file);
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const dict = data.DicomMessage.readFile(buffer, { untilTag: "7FE00010" }).dict;
    const position = (dict["00200032"]?.Value ?? []).map(Number);
    const orientation = (dict["00200037"]?.Value ?? []).map(Number);
    if (position.length !== 3 || orientation.length !== 6) throw new Error(`${file} has no ImagePositionPatient/ImageOrientationPatient`);
    const [a, b, c, d, e, f] = orientation as [number, number, number, number, number, number];
    const normal = [b * f - c * e, c * d - a * f, a * e - b * d];
    return { file, along: normal[0]! * position[0]! + normal[1]! * position[1]! + normal[2]! * position[2]! };
  });
  placed.sort((x, y) => x.along - y.along);
  return placed.map((p) => p.file);
}
