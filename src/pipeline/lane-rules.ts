/**
 * Which lane a new job waits in (the lanes themselves: src/jobs/lanes.ts). A site names its urgent series with a
 * rule over the header values the selection rules read (the series' first instance: StationName, AccessionNumber,
 * StudyPriorityID, SeriesDescription, ...), in the pipelines file:
 *   "lanes": {"urgent": [{"anyOf": [{"tag": "StationName", "oneOf": ["ER-CT1"]}, {"tag": "AccessionNumber", "matches": "^ER"},
 *                                   {"tag": "StudyPriorityID", "oneOf": ["HIGH", "STAT"]}]}]}
 * A series it matches is urgent in every pipeline that selects it, an off-peak one included: someone is waiting for
 * it. Otherwise the pipeline's own lane (routine, or off-peak). A person can make a waiting job urgent (API, panel).
 */
import { z } from "zod";
import { Lane } from "../jobs/lanes.js";
import { evaluateRule, type SeriesFacts, SelectionRule } from "./rules.js";

/** The lanes a pipeline may put its jobs in; urgent comes from the site's rule or a person, not a pipeline. */
export const PipelineLane = z.enum([Lane.Routine, Lane.OffPeak]);
export type PipelineLane = z.infer<typeof PipelineLane>;

export const LaneRules = z.object({
  /** All criteria must hold (use anyOf for alternatives); absent: no series is urgent by rule. */
  urgent: SelectionRule.min(1).optional(),
}).strict();
export type LaneRules = z.infer<typeof LaneRules>;

/** The lane of a new job for a series with these facts, and why, for its timeline. */
export function laneFor(pipelineLane: PipelineLane | undefined, rules: LaneRules | undefined, facts: SeriesFacts): { lane: Lane; reason: string } {
  if (rules?.urgent && evaluateRule(rules.urgent, facts).selected) return { lane: Lane.Urgent, reason: "the site's urgent rule matches the series" };
  return pipelineLane === Lane.OffPeak ? { lane: Lane.OffPeak, reason: "the pipeline runs off-peak" } : { lane: Lane.Routine, reason: "" };
}
