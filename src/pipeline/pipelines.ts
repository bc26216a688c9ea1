/**
 * Pipelines as data (models/pipelines.json): which model runs on which series, chosen by selection rules.
 * A series may match several pipelines; each match becomes its own job. The same file says which lane a pipeline's
 * jobs wait in (routine, or off-peak: only inside the off-peak window) and, for the site, which series are urgent
 * (`lanes.urgent`, a rule over the same header values: lane-rules.ts).
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { LaneRules, PipelineLane } from "./lane-rules.js";
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
  /** routine (when absent) or off-peak; a series the site's urgent rule matches is urgent whatever this says. */
  lane: PipelineLane.optional(),
  select: SelectionRule,
});
export type PipelineDefinition = z.infer<typeof PipelineDefinition>;

const PipelinesFile = z.object({ lanes: LaneRules.optional(), pipelines: z.array(PipelineDefinition).min(1) });

/** The site's lane rules from the pipelines file (validated with the pipelines: loadPipelines names a bad key). */
export function loadLaneRules(file: string): LaneRules {
  const raw = JSON.parse(readFileSync(file, "utf8")) as { lanes?: unknown };
  return LaneRules.parse(raw.lanes ?? {});
}

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
