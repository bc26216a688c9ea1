/**
 * Reads an InVesalius 3 project (.inv3): a gzip'd tar of one folder holding main.plist (an Apple XML plist) and
 * matrix.dat (raw int16, little-endian, C order [slice][row][column], values already in HU). Just enough of tar and
 * of the plist format to get the volume, its spacing, window and a hash of both files. invesalius-series.ts makes a
 * DICOM series of it.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";

// ---------------------------------------------------------------------------------------------------------------
// tar (ustar / GNU / pax) reader: just enough to list regular files and their bytes.

export interface TarEntry {
  name: string;
  data: Buffer;
}

function tarString(block: Buffer, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? field.length : end).toString("utf8");
}

function tarNumber(block: Buffer, offset: number, length: number, what: string): number {
  const field = block.subarray(offset, offset + length);
  if (field[0]! & 0x80) {
    // GNU base-256: big-endian binary with the top bit set as a marker.
    let value = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i]!;
    return value;
  }
  const text = tarString(block, offset, length).trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw new Error(`tar: ${what} field is not octal: ${JSON.stringify(text)}`);
  return parseInt(text, 8);
}

/** The regular files of an uncompressed tar archive, in archive order. */
export function readTar(archive: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  let offset = 0;
  let longName: string | undefined;
  let paxPath: string | undefined;
  while (offset + 512 <= archive.length) {
    const header = archive.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break; // end-of-archive marker
    const expected = tarNumber(header, 148, 8, "checksum");
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
    if (sum !== expected) throw new Error(`tar: bad header checksum at byte ${offset}`);
    const size = tarNumber(header, 124, 12, "size");
    const type = String.fromCharCode(header[156]!);
    const bodyStart = offset + 512;
    if (bodyStart + size > archive.length) throw new Error(`tar: entry at byte ${offset} runs past the archive's end`);
    const body = archive.subarray(bodyStart, bodyStart + size);
    offset = bodyStart + Math.ceil(size / 512) * 512;

    if (type === "L") {
      longName = body.toString("utf8").replace(/\0+$/, "");
      continue;
    }
    if (type === "x") {
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(body.toString("utf8"));
      paxPath = m?.[1];
      continue;
    }
    let name = tarString(header, 0, 100);
    if (tarString(header, 257, 6) === "ustar") {
      const prefix = tarString(header, 345, 155);
      if (prefix !== "") name = `${prefix}/${name}`;
    }
    name = paxPath ?? longName ?? name;
    paxPath = undefined;
    longName = undefined;
    if (type === "0" || type === "\0" || type === "7") entries.push({ name, data: body });
  }
  return entries;
}

// ---------------------------------------------------------------------------------------------------------------
// Apple XML property list reader: dict, array, string, integer, real, true, false, date, data.

export type PlistValue = string | number | boolean | PlistValue[] | { [key: string]: PlistValue };

const XML_ENTITIES: Record<string, string> = { "&lt;": "<", "&gt;": ">", "&amp;": "&", "&quot;": '"', "&apos;": "'" };

export function parsePlist(xml: string): PlistValue {
  const body = xml
    .replace(/<\?[\s\S]*?\?>/g, "")
    .replace(/<!DOCTYPE[\s\S]*?>/g, "")
    .replace(/<!--[\s\S]*?-->/g, "");
  type Token = { text: string } | { tag: string; close: boolean; empty: boolean };
  const tokens: Token[] = [...body.matchAll(/<(\/?)([A-Za-z]+)[^>]*?(\/?)>|([^<]+)/g)]
    .map((m): Token => (m[4] !== undefined ? { text: m[4] } : { tag: m[2]!, close: m[1] === "/", empty: m[3] === "/" }))
    .filter((t) => !("text" in t) || t.text.trim() !== "");
  let i = 0;
  const next = () => {
    const t = tokens[i++];
    if (!t) throw new Error("plist: unexpected end of document");
    return t;
  };
  const textUntil = (tag: string): string => {
    let text = "";
    for (let t = next(); !("tag" in t && t.tag === tag && t.close); t = next()) {
      if (!("text" in t)) throw new Error(`plist: <${t.tag}> inside <${tag}>`);
      text += t.text;
    }
    return text.replace(/&(lt|gt|amp|quot|apos);/g, (e) => XML_ENTITIES[e]!);
  };
  const value = (): PlistValue => {
    const t = next();
    if (!("tag" in t) || t.close) throw new Error(`plist: expected a value, got ${JSON.stringify(t)}`);
    switch (t.tag) {
      case "plist":
        if (t.empty) throw new Error("plist: empty document");
        {
          const v = value();
          const end = next();
          if (!("tag" in end && end.tag === "plist" && end.close)) throw new Error("plist: expected </plist>");
          return v;
        }
      case "dict": {
        const out: { [key: string]: PlistValue } = {};
        if (t.empty) return out;
        for (;;) {
          const k = next();
          if ("tag" in k && k.tag === "dict" && k.close) return out;
          if (!("tag" in k) || k.tag !== "key" || k.close) throw new Error("plist: expected <key> in <dict>");
          const key = k.empty ? "" : textUntil("key");
          out[key] = value();
        }
      }
      case "array": {
        const out: PlistValue[] = [];
        if (t.empty) return out;
        for (;;) {
          const peek = tokens[i];
          if (peek && "tag" in peek && peek.tag === "array" && peek.close) {
            i++;
            return out;
          }
          out.push(value());
        }
      }
      case "string":
      case "date":
      case "data":
        return t.empty ? "" : textUntil(t.tag);
      case "integer":
      case "real": {
        const text = t.empty ? "" : textUntil(t.tag).trim();
        const n = Number(text);
        if (text === "" || !Number.isFinite(n)) throw new Error(`plist: <${t.tag}> ${JSON.stringify(text)} is not a number`);
        return n;
      }
      case "true":
      case "false":
        if (!t.empty) textUntil(t.tag);
        return t.tag === "true";
      default:
        throw new Error(`plist: unsupported element <${t.tag}>`);
    }
  };
  return value();
}

// ---------------------------------------------------------------------------------------------------------------
// The InVesalius project.

export interface InvesaliusVolume {
  /** Project name in main.plist (not a person's name; "ProMED CT 0051" for Cranium.inv3). */
  name: string;
  modality: string;
  /** Project save date from main.plist, used for every date and time in the series. */
  date: Date;
  slices: number;
  rows: number;
  columns: number;
  /** [x (column), y (row), z (slice)] in mm. */
  spacing: [number, number, number];
  window: { center: number; width: number };
  /** HU, little-endian int16, [slice][row][column] exactly as stored in matrix.dat. */
  voxels: Int16Array;
  /** sha256 of main.plist and matrix.dat together: the source's identity for the UIDs. */
  sha256: string;
}

function field(dict: { [key: string]: PlistValue }, key: string): PlistValue {
  const v = dict[key];
  if (v === undefined) throw new Error(`main.plist: key "${key}" is missing`);
  return v;
}

function numberArray(v: PlistValue, key: string, length: number): number[] {
  if (!Array.isArray(v) || v.length !== length || !v.every((x) => typeof x === "number")) {
    throw new Error(`main.plist: "${key}" should be an array of ${length} numbers, got ${JSON.stringify(v)}`);
  }
  return v as number[];
}

/** Reads an InVesalius 3 project (.inv3: gzip'd tar with main.plist and matrix.dat). */
export function readInv3(path: string): InvesaliusVolume {
  let archive: Buffer;
  try {
    archive = gunzipSync(readFileSync(path));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`${path}: cannot read as a gzip'd InVesalius project (.inv3): ${reason}`);
  }
  const entries = readTar(archive);
  const byBase = (base: string) => {
    const found = entries.filter((e) => e.name === base || e.name.endsWith(`/${base}`));
    if (found.length !== 1) throw new Error(`${path}: expected one ${base} in the project, found ${found.length}`);
    return found[0]!.data;
  };
  const plistBytes = byBase("main.plist");
  const plist = parsePlist(plistBytes.toString("utf8"));
  if (typeof plist !== "object" || plist === null || Array.isArray(plist)) throw new Error("main.plist: not a <dict>");

  const matrix = field(plist, "matrix");
  if (typeof matrix !== "object" || Array.isArray(matrix)) throw new Error('main.plist: "matrix" is not a <dict>');
  const dtype = field(matrix, "dtype");
  if (dtype !== "int16") throw new Error(`main.plist: matrix dtype ${JSON.stringify(dtype)} is not supported (int16 only)`);
  const [slices, rows, columns] = numberArray(field(matrix, "shape"), "matrix.shape", 3) as [number, number, number];
  const filename = field(matrix, "filename");
  if (typeof filename !== "string") throw new Error('main.plist: "matrix.filename" is not a string');
  const orientation = plist.orientation;
  // InVesalius: 1 = axial (the slices of matrix.dat are the acquired axial images).
  if (orientation !== undefined && orientation !== 1 && orientation !== "AXIAL") {
    throw new Error(`main.plist: orientation ${JSON.stringify(orientation)} is not axial; only axial projects are supported`);
  }
  const modality = field(plist, "modality");
  if (modality !== "CT") throw new Error(`main.plist: modality ${JSON.stringify(modality)} is not CT`);
  const spacing = numberArray(field(plist, "spacing"), "spacing", 3) as [number, number, number];
  if (!spacing.every((s) => s > 0)) throw new Error(`main.plist: spacing ${JSON.stringify(spacing)} must be positive`);
  const [low, high] = numberArray(field(plist, "scalar_range"), "scalar_range", 2) as [number, number];
  const center = plist.window_level;
  const width = plist.window_width;
  const dateText = plist.date;
  const date = typeof dateText === "string" ? new Date(`${dateText.slice(0, 23)}Z`) : new Date(Date.UTC(2012, 0, 1));
  if (Number.isNaN(date.getTime())) throw new Error(`main.plist: date ${JSON.stringify(dateText)} is not a date`);

  const matrixBytes = byBase(filename);
  if (matrixBytes.length !== slices * rows * columns * 2) {
    throw new Error(`${filename}: ${matrixBytes.length} bytes, expected ${slices}x${rows}x${columns} int16`);
  }
  const voxels = new Int16Array(slices * rows * columns);
  for (let i = 0; i < voxels.length; i++) voxels[i] = matrixBytes.readInt16LE(i * 2);
  // Byte-order check: little-endian HU stays inside the project's scalar range (big-endian would span +-32768).
  let min = Infinity;
  let max = -Infinity;
  for (const v of voxels) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (min < low || max > high) {
    throw new Error(`${filename}: values [${min}, ${max}] outside scalar_range [${low}, ${high}]: not little-endian HU?`);
  }

  return {
    name: typeof plist.name === "string" ? plist.name : "",
    modality,
    date,
    slices,
    rows,
    columns,
    spacing,
    window: {
      center: typeof center === "number" ? center : 40,
      width: typeof width === "number" && width > 0 ? width : 400,
    },
    voxels,
    sha256: createHash("sha256").update(plistBytes).update(matrixBytes).digest("hex"),
  };
}
