/** The demo's last word (scripts/demo-summary.mjs): how each job ended and why, and an exit code that says whether all is well. */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../src/config.js";

const summary = (jobs: unknown[]) =>
  spawnSync(process.execPath, [path.join(PACKAGE_ROOT, "scripts", "demo-summary.mjs")], {
    input: JSON.stringify(jobs),
    encoding: "utf8",
    env: { ...process.env, ORTHANC_URL: "http://127.0.0.1:9", ORTHANC_AUTH: "demo:demo", PREVIEWS: "/nonexistent" },
  });

describe("demo summary", () => {
  it("says why nothing was stored for skipped and rejected jobs, and how to force one", () => {
    const run = summary([
      { id: 1, pipeline: "ncct-syncta", state: "rejected", provider: "cpu", errorMessage: "9.5% of body voxels changed" },
      { id: 2, pipeline: "lowdose-denoise", state: "skipped", provider: null, errorMessage: "not a low dose" },
    ]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout.split("\n")).toEqual([
      "job 1 ncct-syncta: rejected on cpu (its output failed its checks, nothing stored): 9.5% of body voxels changed",
      "job 2 lowdose-denoise: skipped (outside the model's intended use): not a low dose",
      "a rejected output can be stored anyway, marked as such in its DICOM: Run again with force in Orthanc Explorer's ct-enhance panel",
      "",
    ]);
  });

  it("exits 1 when a job failed, or when there is no job at all", () => {
    const failed = summary([{ id: 3, pipeline: "ncct-nodules", state: "failed", provider: "cpu", errorMessage: "Orthanc refused" }]);
    expect(failed.status).toBe(1);
    expect(failed.stdout).toContain("job 3 ncct-nodules: failed on cpu (error): Orthanc refused");
    expect(summary([]).status).toBe(1);
  });

  it("is called by scripts/demo.sh, which bash parses", () => {
    const parse = spawnSync("bash", ["-n", path.join(PACKAGE_ROOT, "scripts", "demo.sh")], { encoding: "utf8" });
    expect(parse.stderr).toBe("");
    expect(parse.status).toBe(0);
  });
});
