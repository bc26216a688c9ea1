/**
 * Pipelines as data (models/pipelines.json): which model runs on which series, chosen by selection rules.
 * A series may match several pipelines; each match becomes its own job.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { SelectionRule } from "./rules.js";

export const PipelineDefinition = z.object({
  id: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
  description: z.string().default(""),
  /** Model id (models/<id>.json). */
  model: z.string(),
  /** Short label used in the derived series' description, e.g. "Syn-CTA". */
  outputLabel: z.string().min(1).max(40),
  /** Disabled pipelines are listed but select nothing. */
  enabled: z.boolean().default(true),
  select: SelectionRule,
});
export type PipelineDefinition = z.infer<typeof PipelineDefinition>;

const PipelinesFile = z.object({ pipelines: z.array(PipelineDefinition).min(1) });

export function loadPipelines(file: string): PipelineDefinition[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new Error(`cannot read pipelines file ${file}: ${(error as Error).message}`);
  }
  const parsed = PipelinesFile.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new Error(`pipelines file ${file} is invalid: ${problems}`);
  }
  const ids = new Set<string>();
  for (const pipeline of parsed.data.pipelines) {
    if (ids.has(pipeline.id)) throw new Error(`pipelines file ${file}: pipeline id '${pipeline.id}' appears twice`);
    ids.add(pipeline.id);
  }
  return parsed.data.pipelines;
}
