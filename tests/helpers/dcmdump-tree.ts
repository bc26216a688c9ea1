/**
 * DCMTK's reading of a file, as a second parser beside dcmjs: `dcmdump +L` (long values whole) parsed into a tree of
 * elements and sequence items, and `dsrdump` (DCMTK's SR parser) as text. A test that checks a value both through
 * dcmjs and through these reads the bytes twice, by two implementations.
 */
import { spawnSync } from "node:child_process";

/** One data element as dcmdump prints it: tag "gggg,eeee" (lower case), VR, value(s), and a sequence's items. */
export interface DumpElement {
  tag: string;
  vr: string;
  values: string[];
  items: DumpElement[][];
}

const ELEMENT = /^( *)\(([0-9a-f]{4},[0-9a-f]{4})\) (\w\w) (.*?) +# +(?:u\/l|\d+), \d+ /;

function valuesOf(vr: string, printed: string): string[] {
  if (vr === "SQ" || vr === "na") return [];
  if (printed.startsWith("(no value")) return [];
  const text = printed.startsWith("[") ? printed.slice(1, printed.lastIndexOf("]")) : printed;
  return text.split("\\");
}

/** Parses dcmdump's text into the dataset's top-level elements. */
export function parseDcmdump(text: string): DumpElement[] {
  const root: DumpElement[] = [];
  // containers[level]: where an element printed at that indentation (2 spaces a level) belongs
  const containers: DumpElement[][] = [root];
  const sequences: DumpElement[] = [];
  for (const line of text.split("\n")) {
    const m = ELEMENT.exec(line);
    if (!m) continue;
    const level = m[1]!.length / 2;
    const [tag, vr, printed] = [m[2]!, m[3]!, m[4]!];
    if (tag === "fffe,e000") {
      const item: DumpElement[] = [];
      sequences[level - 1]!.items.push(item);
      containers[level + 1] = item;
      continue;
    }
    if (tag.startsWith("fffe,")) continue; // delimitation items
    const element: DumpElement = { tag, vr, values: valuesOf(vr, printed), items: [] };
    containers[level]!.push(element);
    if (vr === "SQ") sequences[level] = element;
  }
  return root;
}

/** `dcmdump +L` of a file, parsed; throws with dcmdump's output when it fails. */
export function dcmdumpTree(file: string): DumpElement[] {
  const run = spawnSync("dcmdump", ["+L", "-Un", "+U8", file], { encoding: "utf8", maxBuffer: 64 << 20 });
  if (run.status !== 0) throw new Error(`dcmdump ${file} failed (${run.status}): ${run.stderr}`);
  return parseDcmdump(run.stdout);
}

/**
 * The values at a path of tags, through every item of every sequence on the way, e.g.
 * valuesAt(tree, "0018,a001", "0018,1002") = the Device UIDs of all Contributing Equipment items.
 */
export function valuesAt(elements: DumpElement[], ...path: string[]): string[] {
  const [tag, ...rest] = path;
  const hits = elements.filter((e) => e.tag === tag!.toLowerCase());
  if (rest.length === 0) return hits.flatMap((e) => e.values);
  return hits.flatMap((e) => e.items.flatMap((item) => valuesAt(item, ...rest)));
}

/** The items of the sequences at a path (each item's elements), for checks that must stay inside one item. */
export function itemsAt(elements: DumpElement[], ...path: string[]): DumpElement[][] {
  const [tag, ...rest] = path;
  const hits = elements.filter((e) => e.tag === tag!.toLowerCase());
  if (rest.length === 0) return hits.flatMap((e) => e.items);
  return hits.flatMap((e) => e.items.flatMap((item) => itemsAt(item, ...rest)));
}

/** dsrdump's rendering (codes, template ids and long values in full; its VR checker off: it does not know UTF-8). */
export function dsrdumpText(file: string): { text: string; stderr: string; status: number | null } {
  const run = spawnSync("dsrdump", ["+Pl", "+Pc", "+Pt", "-Dv", file], { encoding: "utf8", maxBuffer: 64 << 20 });
  return { text: run.stdout, stderr: run.stderr, status: run.status };
}
