import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadPipelines } from "../../src/pipeline/pipelines.js";
import { evaluateRule, type SelectionRule } from "../../src/pipeline/rules.js";

const repo = path.resolve(import.meta.dirname, "../..");
const ncct = loadPipelines(path.join(repo, "models", "pipelines.json")).find((p) => p.id === "ncct-syncta")!.select;
const plainChest = { Modality: "CT", ImageType: "ORIGINAL\\PRIMARY\\AXIAL", SeriesDescription: "ROUTINE CHEST NON-CON" };

describe("selection rules", () => {
  it("select a plain non-contrast CT", () => {
    expect(evaluateRule(ncct, { instances: 261, tags: plainChest })).toEqual({ selected: true });
  });

  it("skip contrast, derived, localizer, short and non-CT series, saying why", () => {
    const verdict = (tags: Record<string, unknown>, instances = 200) => evaluateRule(ncct, { instances, tags });
    expect(verdict({ ...plainChest, ContrastBolusAgent: "IV" })).toEqual({
      selected: false,
      reason: "ContrastBolusAgent is 'IV' (rule: must be empty)",
    });
    expect(verdict({ ...plainChest, ImageType: "DERIVED\\SECONDARY\\AXIAL" })).toMatchObject({
      reason: expect.stringMatching(/must include ORIGINAL/),
    });
    expect(verdict({ ...plainChest, ImageType: "ORIGINAL\\PRIMARY\\LOCALIZER" })).toMatchObject({
      reason: expect.stringMatching(/must not include LOCALIZER/),
    });
    expect(verdict({ ...plainChest, SeriesDescription: "CTA chest arterial" })).toMatchObject({ selected: false });
    expect(verdict(plainChest, 3)).toEqual({ selected: false, reason: "only 3 instances (rule: at least 20)" });
    expect(verdict({ ...plainChest, Modality: "MR" })).toMatchObject({ reason: "Modality is 'MR' (rule: must be 'CT')" });
  });

  it("compare numbers and alternatives", () => {
    const lowDose: SelectionRule = [
      { anyOf: [{ tag: "CTDIvol", max: 3 }, { tag: "SeriesDescription", matches: "low.?dose" }] },
    ];
    expect(evaluateRule(lowDose, { instances: 1, tags: { CTDIvol: "2.1" } })).toEqual({ selected: true });
    expect(evaluateRule(lowDose, { instances: 1, tags: { SeriesDescription: "LOW DOSE SCREENING" } }).selected).toBe(true);
    const verdict = evaluateRule(lowDose, { instances: 1, tags: { CTDIvol: "8.5" } });
    expect(verdict).toMatchObject({ selected: false, reason: expect.stringMatching(/^none of: CTDIvol is '8.5'/) });
  });

  it("reject a pipelines file with an unknown rule operator, naming it", () => {
    const file = path.join(import.meta.dirname, "bad-pipelines.tmp.json");
    const bad = { pipelines: [{ id: "x", model: "m", outputLabel: "X", select: [{ tag: "Modality", equal: "CT" }] }] };
    writeFileSync(file, JSON.stringify(bad));
    try {
      expect(() => loadPipelines(file)).toThrow(/pipelines\.0\.select\.0/);
    } finally {
      rmSync(file);
    }
    expect(readFileSync(path.join(repo, "models", "pipelines.json"), "utf8")).toContain("ncct-syncta");
  });
});
