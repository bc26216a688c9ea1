/**
 * Worker threads run compiled JavaScript: from dist/ the worker sits beside its caller; when the caller runs from
 * src/ (vitest) the worker is taken from dist/, so `npm run build` must have run.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The compiled worker at `relative` (from the source root, e.g. "models/inference-worker.js"). */
export function compiledWorkerFile(relative: string): URL {
  const beside = new URL(`./${relative}`, import.meta.url);
  if (existsSync(fileURLToPath(beside))) return beside;
  const built = new URL(`../dist/${relative}`, import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new Error(`dist/${relative} is missing: run \`npm run build\` first`);
}
