/**
 * The spine, end to end, against a real Orthanc, with only the running service acting: every NCCT series gets one
 * job per default pipeline, and each ends as its measured safeguards say (done, skipped outside the model's intended
 * use, or rejected by its output checks, storing nothing), never failed; the contrast series is skipped by the rules;
 * a forced re-run stores what the checks rejected and its DICOM says so; whatever is stored lands on its source and
 * passes dciodvfy; a restart writes nothing twice.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { data } from "dcmjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { contentTree } from "../../src/dicom/sr/content-tree.js";
import { ctSeriesFolder, requireCtData } from "../helpers/ct-data.js";
import { startService, waitFor, type TestService } from "../helpers/ct-service.js";
import { startOrthanc, type TestOrthanc } from "../helpers/orthanc.js";
import { requireOrthanc } from "../helpers/system-tools.js";

const run = promisify(execFile);
const ready = requireCtData("lidc-idri-0002-ncct", "lidc-idri-0001-cect", "ricord-ncct-jpegls") && requireOrthanc();
const PIPELINES = ["ncct-syncta", "ncct-nodules", "lowdose-denoise"];

interface Job {
  id: number;
  pipeline: string;
  state: string;
  run: number;
  forced: boolean;
  sourceSeriesUid: string;
  sourceOrthancId: string;
  outputSeriesUid: string | null;
  errorStage: string | null;
  errorMessage: string | null;
  provider: string | null;
}
interface OrthancSeries {
  ID: string;
  Instances: string[];
  MainDicomTags: Record<string, string>;
  ParentStudy: string;
}
interface Decision { pipeline: string | null; decision: string; reason: string }

describe.runIf(ready)("new series are processed by themselves, within their safeguards (real Orthanc)", () => {
  let orthanc: TestOrthanc;
  let service: TestService;
  let ncct: OrthancSeries;
  let ricord: OrthancSeries;

  const seriesOf = (id: string) => orthanc.rest<OrthancSeries>(`/series/${id}`);
  const studySeries = async (studyId: string) => {
    const study = await orthanc.rest<{ Series: string[] }>(`/studies/${studyId}`);
    return Promise.all(study.Series.map(seriesOf));
  };
  const seriesByUid = async (uid: string): Promise<OrthancSeries | undefined> => {
    const hit = (await orthanc.rest<{ ID: string; Type: string }[]>("/tools/lookup", { method: "POST", body: uid })).find((h) => h.Type === "Series");
    return hit ? seriesOf(hit.ID) : undefined;
  };
  /** The series' jobs of every default pipeline, once each has ended; a failed one fails the test with its reason. */
  const endedJobs = (seriesUid: string, run = 1) =>
    waitFor(`ended jobs for series ${seriesUid}`, async () => {
      const jobs = await service.api<Job[]>(`/jobs?series=${encodeURIComponent(seriesUid)}`);
      const failed = jobs.find((j) => j.state === "failed");
      if (failed) throw new Error(`job ${failed.id} (${failed.pipeline}) failed: ${failed.errorMessage}`);
      const ended = jobs.length === PIPELINES.length && jobs.every((j) => ["done", "skipped", "rejected"].includes(j.state) && j.run >= run);
      return ended ? jobs : undefined;
    }, 600_000, service);
  const jobOf = (jobs: Job[], pipeline: string) => jobs.find((j) => j.pipeline === pipeline)!;
  const naturalized = async (instance: string): Promise<Record<string, any>> => {
    const bytes = await orthanc.restBytes(`/instances/${instance}/file`);
    return data.DicomMetaDictionary.naturalizeDataset(data.DicomMessage.readFile(new Uint8Array(bytes).buffer).dict);
  };
  const tagsOf = (instance: string) => orthanc.rest<Record<string, unknown>>(`/instances/${instance}/simplified-tags`);

  beforeAll(async () => {
    orthanc = await startOrthanc({ stableAgeSeconds: 2 });
    service = await startService(orthanc);
    const [ncctId] = await orthanc.uploadFolder(ctSeriesFolder("lidc-idri-0002-ncct"));
    await orthanc.uploadFolder(ctSeriesFolder("lidc-idri-0001-cect"));
    const [ricordId] = await orthanc.uploadFolder(ctSeriesFolder("ricord-ncct-jpegls"));
    ncct = await seriesOf(ncctId!);
    ricord = await seriesOf(ricordId!);
  }, 180_000);

  afterAll(async () => {
    await service?.stop();
    service?.remove();
    await orthanc?.stop();
  });

  it("ends every job of an NCCT chest as measured: stored when done, nothing stored when skipped or rejected, and why", async () => {
    for (const series of [ncct, ricord]) {
      const jobs = await endedJobs(series.MainDicomTags.SeriesInstanceUID!);
      expect(jobs.map((j) => j.pipeline).sort()).toEqual([...PIPELINES].sort());
      // Neither chest is low-dose: the denoiser's intended use says no, by the noise measured (no CTDIvol in the headers).
      const denoise = jobOf(jobs, "lowdose-denoise");
      expect(denoise).toMatchObject({ state: "skipped", errorStage: "probe" });
      expect(denoise.errorMessage).toMatch(/^measured noise 2\d(\.\d)? HU \(no CTDIvol in the header\): not a low dose/);
      const decisions = await service.api<Decision[]>(`/decisions?series=${series.ID}`);
      for (const job of jobs) {
        const output = job.outputSeriesUid ? await seriesByUid(job.outputSeriesUid) : undefined;
        if (job.state === "done") {
          expect(output, `${job.pipeline}: its output is stored`).toBeDefined();
          continue;
        }
        expect(output, `${job.pipeline} ${job.state}: nothing stored`).toBeUndefined();
        expect(decisions.some((d) => d.pipeline === job.pipeline && d.decision === job.state && d.reason.includes(job.errorMessage!)),
          `${job.pipeline}: a ${job.state} decision with the reason`).toBe(true);
        if (job.state === "rejected") expect(job.errorMessage).toMatch(/\(limit /); // the figure beside its limit
      }
    }
  }, 900_000);

  it("skips the contrast series: by their header rule for the non-contrast pipelines, by its measured noise for the denoiser", async () => {
    const series = await orthanc.rest<string[]>("/series");
    const cect = (await Promise.all(series.map(seriesOf))).find((s) => s.MainDicomTags.ContrastBolusAgent === "IV")!;
    const uid = cect.MainDicomTags.SeriesInstanceUID!;
    const jobs = await waitFor("the contrast series' denoise job to end", async () => {
      const found = await service.api<Job[]>(`/jobs?series=${encodeURIComponent(uid)}`);
      return found.length === 1 && found[0]!.state === "skipped" ? found : undefined;
    }, 300_000, service);
    expect(jobs[0]).toMatchObject({ pipeline: "lowdose-denoise", errorStage: "probe" });
    const decisions = await service.api<Decision[]>(`/decisions?series=${cect.ID}`);
    // The denoiser's header rule queued it; its measurement skipped it: the last word per pipeline is "skipped".
    for (const pipeline of PIPELINES) expect(decisions.filter((d) => d.pipeline === pipeline).at(-1)?.decision, pipeline).toBe("skipped");
    for (const pipeline of ["ncct-syncta", "ncct-nodules"]) {
      expect(decisions.find((d) => d.pipeline === pipeline)!.reason).toMatch(/ContrastBolusAgent is 'IV'/);
    }
  }, 360_000);

  it("stores a forced Syn-CTA run on the source's geometry, marked AI-generated and saying which safeguards it went past", async () => {
    const before = jobOf(await endedJobs(ncct.MainDicomTags.SeriesInstanceUID!), "ncct-syncta");
    const answer = await fetch(`${service.apiUrl}/series/${ncct.ID}/rerun`, {
      method: "POST",
      headers: { Authorization: `Bearer ${service.token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ pipeline: "ncct-syncta", force: true, requestedBy: "end-to-end test" }),
    });
    expect(answer.status).toBe(202);
    const job = await waitFor("the forced run to end", async () => {
      const current = await service.api<Job>(`/jobs/${before.id}`);
      if (current.state === "failed") throw new Error(`forced run failed: ${current.errorMessage}`);
      return current.run === before.run + 1 && current.state === "done" ? current : undefined;
    }, 600_000, service);
    expect(job.forced).toBe(true);
    // Within its intended use, the run covers the chest and abdomen slab: LIDC-IDRI-0002's 36 mm of neck above the
    // lungs lie more than the 20 mm margin beyond them, and the Syn-CTA model is not for the neck.
    const { events } = await service.api<{ events: { kind: string; message: string }[] }>(`/jobs/${job.id}`);
    const slabNote = events.filter((e) => e.kind === "intended-use").map((e) => e.message).find((m) => m.startsWith("slab:"));
    const slab = /^slab: slices (\d+)-(\d+) of 261 \(chest\+abdomen; the volume also shows head \d+ mm\)/.exec(slabNote ?? "");
    if (!slab) throw new Error(`no slab note among the job's events: ${JSON.stringify(events)}`);
    const [slabFirst, slabLast] = [Number(slab[1]), Number(slab[2])];
    expect(slabFirst).toBe(1);
    expect(slabLast).toBeGreaterThan(231);
    expect(slabLast).toBeLessThan(261);
    const derived = (await seriesByUid(job.outputSeriesUid!))!;
    expect(derived.Instances).toHaveLength(slabLast - slabFirst + 1);
    expect(derived.ParentStudy).toBe(ncct.ParentStudy);
    const sourceTags = await Promise.all(ncct.Instances.map(tagsOf));
    const derivedTags = await Promise.all(derived.Instances.map(tagsOf));
    expect([...new Set(derivedTags.map((t) => t.FrameOfReferenceUID))]).toEqual([sourceTags[0]!.FrameOfReferenceUID]);
    const position = (t: Record<string, unknown>) => String(t.ImagePositionPatient).split("\\").map((v) => Number(v).toFixed(3)).join("\\");
    const sourcePositions = new Set(sourceTags.map(position));
    for (const t of derivedTags) expect(sourcePositions.has(position(t)), position(t)).toBe(true);
    // The slices left out are the most superior ones (the neck), never a gap inside the slab.
    const height = (t: Record<string, unknown>) => Number(String(t.ImagePositionPatient).split("\\")[2]);
    const derivedTop = Math.max(...derivedTags.map(height));
    expect(sourceTags.filter((t) => height(t) <= derivedTop)).toHaveLength(derived.Instances.length);
    const first = await naturalized(derived.Instances[0]!);
    expect(first.ImageType).toEqual(["DERIVED", "SECONDARY", "AXIAL"]);
    expect(first.SeriesDescription).toMatch(/AI-generated/i);
    // What the checks found is in the series itself when they failed (a forced run stores it all the same).
    if (before.state === "rejected") {
      for (const text of [first.DerivationDescription, first.ImageComments]) {
        expect(text).toMatch(/past ct-enhance's safeguards \(force\): .*\(limit /);
      }
    }
    // No PHI in the service's logs: neither the patient's ID nor name appears, though the service handled both.
    for (const phi of [sourceTags[0]!.PatientID, sourceTags[0]!.PatientName]) {
      if (typeof phi === "string" && phi.length > 0) expect(service.log()).not.toContain(phi);
    }
  }, 900_000);

  it("stores one TID 1500 SR, and one SEG holding exactly its findings, for every detection job that is done", async () => {
    const doneDetections = [];
    for (const series of [ncct, ricord]) {
      const detection = jobOf(await endedJobs(series.MainDicomTags.SeriesInstanceUID!), "ncct-nodules");
      if (detection.state === "done") doneDetections.push({ series, detection });
    }
    expect(doneDetections.length, "at least one chest's detection job is done").toBeGreaterThan(0);
    for (const { series, detection } of doneDetections) {
      const inStudy = (await studySeries(series.ParentStudy)).filter((s) => s.ID !== series.ID);
      const srSeries = inStudy.filter((s) => s.MainDicomTags.Modality === "SR");
      expect(srSeries.map((s) => s.MainDicomTags.SeriesInstanceUID)).toEqual([detection.outputSeriesUid]);
      const sr = await naturalized(srSeries[0]!.Instances[0]!);
      expect(sr.SOPClassUID).toBe("1.2.840.10008.5.1.4.1.1.88.34"); // Comprehensive 3D SR
      const tree = contentTree(sr);
      const groups = tree.children!.find((c) => c.concept?.includes("Imaging Measurements"))!.children!;
      // Every statement, "no nodule" included, carries the detector's scope.
      expect(JSON.stringify(tree)).toMatch(/scope: nodules of 3-30 mm longest diameter inside the lungs/);
      const volumetric = groups.filter((g) => g.template === "DCMR 1411");
      const trackingUids = volumetric.map((g) => g.children!.find((c) => c.concept?.includes("Tracking Unique Identifier"))!.value);
      const segSeries = inStudy.filter((s) => s.MainDicomTags.Modality === "SEG");
      if (volumetric.length === 0) {
        expect(segSeries, "no finding, no SEG").toEqual([]);
        expect(groups.map((g) => g.template)).toEqual(["DCMR 1501"]);
        continue;
      }
      expect(volumetric.length).toBeLessThanOrEqual(20);
      expect(groups.filter((g) => g.template === "DCMR 1410")).toHaveLength(volumetric.length);
      expect(segSeries).toHaveLength(1);
      const seg = await naturalized(segSeries[0]!.Instances[0]!);
      expect((seg.SegmentSequence as { TrackingUID: string }[]).map((s) => s.TrackingUID)).toEqual(trackingUids);
    }
  }, 900_000);

  it("writes instances that dciodvfy passes with zero errors, every one (derived CT, SR, SEG)", async () => {
    const written = [];
    for (const series of [ncct, ricord]) written.push(...(await studySeries(series.ParentStudy)).filter((s) => s.ID !== series.ID));
    const instances = written.flatMap((s) => s.Instances);
    expect(instances.length).toBeGreaterThan(0);
    const folder = mkdtempSync(path.join(tmpdir(), "ct-enhance-dciodvfy-"));
    try {
      const failures: string[] = [];
      let next = 0;
      const verifier = async (): Promise<void> => {
        while (next < instances.length) {
          const instance = instances[next++]!;
          const file = path.join(folder, `${instance}.dcm`);
          writeFileSync(file, await orthanc.restBytes(`/instances/${instance}/file`));
          const result = await run("dciodvfy", [file]).catch((e: { stdout: string; stderr: string }) => e);
          const errors = `${result.stdout}${result.stderr}`.split("\n").filter((line) => /^Error/.test(line));
          if (errors.length > 0) failures.push(`${instance}: ${errors.join(" | ")}`);
        }
      };
      await Promise.all([verifier(), verifier()]);
      expect(failures).toEqual([]);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  }, 300_000);

  it("writes nothing twice after a restart", async () => {
    const seriesBefore = (await studySeries(ncct.ParentStudy)).length;
    const jobsBefore = await service.api<Job[]>("/jobs");
    await service.stop();
    await service.start();
    await waitFor("the restarted feed to catch up", async () => {
      const feed = await service.api<{ caughtUp: boolean }>("/feed");
      return feed.caughtUp ? true : undefined;
    }, 60_000, service);
    await new Promise((r) => setTimeout(r, 5_000)); // a few watcher passes
    expect(await studySeries(ncct.ParentStudy)).toHaveLength(seriesBefore);
    const jobsAfter = await service.api<Job[]>("/jobs");
    expect(jobsAfter.map((j) => [j.id, j.run, j.state])).toEqual(jobsBefore.map((j) => [j.id, j.run, j.state]));
  }, 180_000);
});
