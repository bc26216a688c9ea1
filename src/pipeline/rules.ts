/**
 * Series-selection rules as data. A rule is a list of criteria that must all hold; each criterion names a DICOM
 * keyword (read from the series' first instance) or the instance count, and says what it must be. The answer is
 * the decision and, when a series is skipped, the first criterion it failed in words a PACS administrator reads.
 */
import { z } from "zod";
import type { SimplifiedTags } from "../orthanc/rest.js";

const TagCriterion = z.object({
  /** DICOM keyword, e.g. "Modality", "ContrastBolusAgent", "ImageType", "CTDIvol". */
  tag: z.string().regex(/^[A-Za-z][A-Za-z0-9]*$/),
  /** The value (the whole value, multi-valued ones joined by '\') equals this. */
  equals: z.string().optional(),
  /** The value is one of these. */
  oneOf: z.array(z.string()).optional(),
  /** true: absent or blank; false: present and not blank. */
  empty: z.boolean().optional(),
  /** One of the '\'-separated values equals this (ImageType includes ORIGINAL). */
  includes: z.string().optional(),
  /** None of the '\'-separated values equals this. */
  excludes: z.string().optional(),
  /** The value matches this regular expression (case-insensitive). */
  matches: z.string().optional(),
  /** The value does not match this regular expression (case-insensitive); absent values pass. */
  notMatches: z.string().optional(),
  /** Numeric value at least / at most this (absent or non-numeric fails). */
  min: z.number().optional(),
  max: z.number().optional(),
}).strict();

const InstanceCountCriterion = z.object({
  instances: z.object({ min: z.number().int().optional(), max: z.number().int().optional() }).strict(),
}).strict();

export type Criterion =
  | z.infer<typeof TagCriterion>
  | z.infer<typeof InstanceCountCriterion>
  | { anyOf: Criterion[] };

export const Criterion: z.ZodType<Criterion> = z.lazy(() =>
  z.union([TagCriterion, InstanceCountCriterion, z.object({ anyOf: z.array(Criterion).min(1) }).strict()]),
);

export const SelectionRule = z.array(Criterion);
export type SelectionRule = z.infer<typeof SelectionRule>;

/** What the rules look at: the series' instance count and its first instance's tags. */
export interface SeriesFacts {
  instances: number;
  tags: SimplifiedTags;
}

export type Verdict = { selected: true } | { selected: false; reason: string };

function textOf(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return value.trim();
  if (typeof value === "number") return String(value);
  return undefined; // sequences are not compared as text
}

function describe(tag: string, value: string | undefined): string {
  return value === undefined || value === "" ? `${tag} is absent` : `${tag} is '${value}'`;
}

/** Why the criterion fails for these facts, or undefined when it holds. */
function failure(criterion: Criterion, facts: SeriesFacts): string | undefined {
  if ("anyOf" in criterion) {
    const reasons = criterion.anyOf.map((c) => failure(c, facts));
    return reasons.some((r) => r === undefined) ? undefined : `none of: ${reasons.join(" / ")}`;
  }
  if ("instances" in criterion) {
    const { min, max } = criterion.instances;
    if (min !== undefined && facts.instances < min) return `only ${facts.instances} instances (rule: at least ${min})`;
    if (max !== undefined && facts.instances > max) return `${facts.instances} instances (rule: at most ${max})`;
    return undefined;
  }
  const value = textOf(facts.tags[criterion.tag]);
  const values = value === undefined || value === "" ? [] : value.split("\\").map((v) => v.trim().toUpperCase());
  const is = describe(criterion.tag, value);
  if (criterion.empty === true && values.length > 0) return `${is} (rule: must be empty)`;
  if (criterion.empty === false && values.length === 0) return `${is} (rule: must be present)`;
  if (criterion.equals !== undefined && (value ?? "").toUpperCase() !== criterion.equals.toUpperCase()) {
    return `${is} (rule: must be '${criterion.equals}')`;
  }
  if (criterion.oneOf && !criterion.oneOf.some((v) => v.toUpperCase() === (value ?? "").toUpperCase())) {
    return `${is} (rule: one of ${criterion.oneOf.join(", ")})`;
  }
  if (criterion.includes !== undefined && !values.includes(criterion.includes.toUpperCase())) {
    return `${is} (rule: must include ${criterion.includes})`;
  }
  if (criterion.excludes !== undefined && values.includes(criterion.excludes.toUpperCase())) {
    return `${is} (rule: must not include ${criterion.excludes})`;
  }
  if (criterion.matches !== undefined && !new RegExp(criterion.matches, "i").test(value ?? "")) {
    return `${is} (rule: must match /${criterion.matches}/i)`;
  }
  if (criterion.notMatches !== undefined && value !== undefined && new RegExp(criterion.notMatches, "i").test(value)) {
    return `${is} (rule: must not match /${criterion.notMatches}/i)`;
  }
  if (criterion.min !== undefined || criterion.max !== undefined) {
    const number = value === undefined ? Number.NaN : Number(value);
    if (!Number.isFinite(number)) return `${is} (rule: a number ${rangeText(criterion.min, criterion.max)})`;
    if (criterion.min !== undefined && number < criterion.min) return `${is} (rule: ${rangeText(criterion.min, criterion.max)})`;
    if (criterion.max !== undefined && number > criterion.max) return `${is} (rule: ${rangeText(criterion.min, criterion.max)})`;
  }
  return undefined;
}

function rangeText(min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) return `between ${min} and ${max}`;
  return min !== undefined ? `at least ${min}` : `at most ${max}`;
}

export function evaluateRule(rule: SelectionRule, facts: SeriesFacts): Verdict {
  for (const criterion of rule) {
    const reason = failure(criterion, facts);
    if (reason !== undefined) return { selected: false, reason };
  }
  return { selected: true };
}
