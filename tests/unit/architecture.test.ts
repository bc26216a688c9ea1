/**
 * The house the code is built as (README, "The floors"): every source file sits on a floor, and imports only from
 * its own floor or below, never up; no two files import each other, directly or round about; no file is over 400
 * lines. Read from the sources themselves, so a new import that breaks the house fails here with its file and line.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const SRC = path.resolve(import.meta.dirname, "../../src");

/** Path prefixes (relative to src/, longest match wins) and their floors, from the ground up. */
export const FLOORS: Record<string, number> = {
  // 0: the ground every layer stands on
  "log.ts": 0, "redact.ts": 0, "stage-error.ts": 0, "version.ts": 0, "config.ts": 0, "event-loop.ts": 0, "compiled-worker.ts": 0, "types/": 0,
  // 1: DICOM objects: Part 10, volumes, the writers
  "dicom/": 1,
  // 2: what talks to Orthanc, runs models, measures volumes, keeps the record
  "dicomweb/": 2, "orthanc/": 2, "models/": 2, "measure/": 2, "jobs/": 2, "notify/": 2,
  // 3: the way a series travels: selection, output plans, stages, the runner
  "pipeline/": 3,
  // 4: the HTTP API
  "api/": 4,
  // 5: the running service: queue, schedules, reconcile, wiring
  "service/": 5,
  // 6: commands
  "cli.ts": 6, "bench/": 6, "eval/": 6, "tools/": 6,
};

const MAX_LINES = 400;

function sourceFiles(folder: string): string[] {
  return readdirSync(folder).flatMap((name) => {
    const full = path.join(folder, name);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return name.endsWith(".ts") ? [full] : [];
  });
}

function floorOf(file: string): number {
  const relative = path.relative(SRC, file).split(path.sep).join("/");
  const prefix = Object.keys(FLOORS).filter((p) => relative === p || relative.startsWith(p)).sort((a, b) => b.length - a.length)[0];
  if (prefix === undefined) throw new Error(`${relative} sits on no floor: add its folder to FLOORS (and to the README)`);
  return FLOORS[prefix]!;
}

interface Import { from: string; to: string; line: number }

/** Static imports and re-exports (over several lines too), side-effect imports and dynamic import() of our files. */
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?\bfrom\s+"(\.{1,2}\/[^"]+)"|(?:^|\n)\s*import\s+"(\.{1,2}\/[^"]+)"|\bimport\(\s*"(\.{1,2}\/[^"]+)"\s*\)/g;

function importsOf(file: string): Import[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(IMPORT)].map((match) => {
    const target = (match[1] ?? match[2] ?? match[3])!;
    const line = text.slice(0, match.index + match[0].length).split("\n").length;
    return { from: file, to: path.resolve(path.dirname(file), target.replace(/\.js$/, ".ts")), line };
  });
}

const files = sourceFiles(SRC);
const imports = files.flatMap(importsOf);

it("reads the imports it judges (the reader is not blind)", () => {
  expect(imports.length).toBeGreaterThan(300);
  const runner = imports.filter((i) => show(i.from) === "pipeline/runner.ts").map((i) => show(i.to));
  expect(runner).toEqual(expect.arrayContaining(["stage-error.ts", "pipeline/outputs/output-plan.ts", "jobs/ledger.ts"]));
});
const show = (file: string) => path.relative(SRC, file);

describe("the house", () => {
  it("has every file on a floor, and no import from a lower floor to a higher one", () => {
    const upward = imports.filter((i) => floorOf(i.to) > floorOf(i.from))
      .map((i) => `${show(i.from)}:${i.line} (floor ${floorOf(i.from)}) imports ${show(i.to)} (floor ${floorOf(i.to)})`);
    expect(upward).toEqual([]);
  });

  it("has no import cycle", () => {
    const edges = new Map<string, string[]>();
    for (const i of imports) edges.set(i.from, [...(edges.get(i.from) ?? []), i.to]);
    const state = new Map<string, "visiting" | "done">();
    const cycles: string[] = [];
    const visit = (file: string, trail: string[]): void => {
      if (state.get(file) === "done") return;
      if (state.get(file) === "visiting") {
        cycles.push([...trail.slice(trail.indexOf(file)), file].map(show).join(" -> "));
        return;
      }
      state.set(file, "visiting");
      for (const next of edges.get(file) ?? []) visit(next, [...trail, file]);
      state.set(file, "done");
    };
    for (const file of files) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it(`has no source file over ${MAX_LINES} lines`, () => {
    const long = files.map((file) => ({ file: show(file), lines: readFileSync(file, "utf8").split("\n").length - 1 }))
      .filter((f) => f.lines > MAX_LINES);
    expect(long).toEqual([]);
  });
});
