// The demo's last word: how each job on the demo series ended, and where to look (reads the jobs as JSON on stdin).
// Used by scripts/demo.sh; ORTHANC_URL, ORTHANC_AUTH (user:password), API_URL, API_TOKEN and PREVIEWS come from it.
// A job that is done gets its own last line (what it stored: "11 finding(s) ...; SR series ..., SEG series ...") and a
// link to every series that line names.
import { existsSync, readFileSync } from "node:fs";

const jobs = JSON.parse(readFileSync(0, "utf8"));
const auth = "Basic " + Buffer.from(process.env.ORTHANC_AUTH).toString("base64");
for (const j of jobs) {
  const why = { skipped: "outside the model's intended use", rejected: "its output failed its checks, nothing stored", failed: "error" }[j.state];
  console.log(`job ${j.id} ${j.pipeline}: ${j.state}` + (j.provider ? ` on ${j.provider}` : "") + (why ? ` (${why}): ${j.errorMessage}` : ""));
  if (j.state !== "done" || !j.outputSeriesUid) continue;
  const detail = await (await fetch(`${process.env.API_URL}/jobs/${j.id}`, { headers: { Authorization: `Bearer ${process.env.API_TOKEN}` } })).json();
  const done = detail.events?.findLast((e) => e.kind === "done")?.message ?? "";
  if (done) console.log(`  ${done}`);
  const named = [...done.matchAll(/\b(SR|SEG|derived|output) series ([0-9.]+)/g)].map((m) => [m[1], m[2]]);
  for (const [kind, uid] of named.length > 0 ? named : [["output", j.outputSeriesUid]]) {
    const hits = await (await fetch(`${process.env.ORTHANC_URL}/tools/lookup`, { method: "POST", body: uid, headers: { Authorization: auth } })).json();
    const id = hits.find((h) => h.Type === "Series")?.ID;
    console.log(`  ${kind} series: ${process.env.ORTHANC_URL}/app/explorer.html#series?uuid=${id}`);
  }
  const preview = `${process.env.PREVIEWS}/job-${j.id}.png`;
  if (existsSync(preview)) console.log(`  before/after PNG of the middle slice: ${preview}`);
}
if (jobs.some((j) => j.state === "rejected")) {
  console.log("a rejected output can be stored anyway, marked as such in its DICOM: Run again with force in Orthanc Explorer's ct-enhance panel");
}
process.exitCode = jobs.length > 0 && jobs.every((j) => ["done", "skipped", "rejected"].includes(j.state)) ? 0 : 1;
