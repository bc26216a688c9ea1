/** The demo's last word (scripts/demo-summary.mjs): how each job ended and why, and an exit code that says whether all is well. */
import { spawn, spawnSync } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
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

  it("names what a done job stored and links every series its last line names (a detector's SR and SEG)", async () => {
    // One fake for both: the API's job and Orthanc's lookup (the Orthanc id is the UID's last part).
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => { body += c.toString(); });
      req.on("end", () => {
        res.writeHead(200, { "Content-Type": "application/json" });
        if (req.url === "/jobs/5" && req.headers.authorization === "Bearer t0ken") {
          res.end(JSON.stringify({ events: [{ kind: "started", message: "attempt 1" },
            { kind: "done", message: "2 finding(s); SR series 2.25.11, SEG series 2.25.12 in 3.0 s" }] }));
        } else if (req.url === "/tools/lookup") {
          res.end(JSON.stringify([{ Type: "Series", ID: `orthanc-${body.split(".").at(-1)}` }]));
        } else res.end("{}");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const child = spawn(process.execPath, [path.join(PACKAGE_ROOT, "scripts", "demo-summary.mjs")], {
        env: { ...process.env, ORTHANC_URL: url, ORTHANC_AUTH: "demo:demo", API_URL: url, API_TOKEN: "t0ken", PREVIEWS: "/nonexistent" },
      });
      let stdout = "";
      child.stdout.on("data", (c: Buffer) => { stdout += c.toString(); });
      child.stdin.end(JSON.stringify([{ id: 5, pipeline: "ncct-nodules", state: "done", provider: "cpu", outputSeriesUid: "2.25.11", errorMessage: null }]));
      const status = await new Promise((resolve) => child.on("exit", resolve));
      expect(status).toBe(0);
      expect(stdout.split("\n")).toEqual([
        "job 5 ncct-nodules: done on cpu",
        "  2 finding(s); SR series 2.25.11, SEG series 2.25.12 in 3.0 s",
        `  SR series: ${url}/app/explorer.html#series?uuid=orthanc-11`,
        `  SEG series: ${url}/app/explorer.html#series?uuid=orthanc-12`,
        "",
      ]);
    } finally {
      server.close();
    }
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
