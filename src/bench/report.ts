/** The benchmark's results: one JSON file and a short markdown table beside it, in bench-results/. */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

export const MiB = 2 ** 20;
export const fmtS = (ms: number) => (ms / 1000).toFixed(2);
export const fmtMiB = (bytes: number) => (bytes / MiB).toFixed(0);

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function table(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

export function writeResults(folder: string, stem: string, json: unknown, markdown: string): { json: string; markdown: string } {
  mkdirSync(folder, { recursive: true });
  const jsonFile = path.join(folder, `${stem}.json`);
  const markdownFile = path.join(folder, `${stem}.md`);
  writeFileSync(jsonFile, `${JSON.stringify(json, null, 2)}\n`);
  writeFileSync(markdownFile, markdown.endsWith("\n") ? markdown : `${markdown}\n`);
  return { json: jsonFile, markdown: markdownFile };
}
