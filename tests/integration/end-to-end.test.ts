/**
 * The spine, end to end, against a real Orthanc: series arrive, and with only the running service acting, the NCCT
 * series come back as derived CT series in the same study, the contrast series is skipped with its reason, and a
 * restart writes nothing twice.
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

interface Job {
  id: number;
  pipeline: string;
  state: string;
  sourceSeriesUid: string;
  outputSeriesUid: string | null;
  errorMessage: string | null;
  provider: string | null;
}
interface OrthancSeries {
  ID: string;
  Instances: string[];
  MainDicomTags: Record<string, string>;
  ParentStudy: string;
}

describe.runIf(ready)("a new series comes back as a derived series, by itself (real Orthanc)", () => {
  let orthanc: TestOrthanc;
  let service: TestService;
  let ncctSeries: OrthancSeries;

  const seriesOf = (id: string) => orthanc.rest<OrthancSeries>(`/series/${id}`);
  const tagsOf = (instance: string) => orthanc.rest<Record<string, unknown>>(`/instances/${instance}/simplified-tags`);
  const studySeries = async (studyId: string) => {
    const study = await orthanc.rest<{ Series: string[] }>(`/studies/${studyId}`);
    return Promise.all(study.Series.map(seriesOf));
  };
  /** Every pipeline's job for the series, once all are done (NCCT matches synthesis and detection). */
  const doneJobs = (seriesUid: string) =>
    waitFor(`finished jobs for series ${seriesUid}`, async () => {
      const jobs = await service.api<Job[]>(`/jobs?series=${encodeURIComponent(seriesUid)}`);
      const failed = jobs.find((j) => j.state === "failed");
      if (failed) throw new Error(`job ${failed.id} (${failed.pipeline}) failed: ${failed.errorMessage}`);
      return jobs.length === 2 && jobs.every((j) => j.state === "done") ? jobs : undefined;
    }, 600_000, service);
  const jobOf = (jobs: Job[], pipeline: string) => jobs.find((j) => j.pipeline === pipeline)!;
  const naturalizedInstance = async (instance: string): Promise<Record<string, unknown>> => {
    const bytes = await orthanc.restBytes(`/instances/${instance}/file`);
    return data.DicomMetaDictionary.naturalizeDataset(data.DicomMessage.readFile(new Uint8Array(bytes).buffer).dict);
  };
  const derivedCtOf = async (source: OrthancSeries) =>
    (await studySeries(source.ParentStudy)).filter((s) => s.ID !== source.ID && s.MainDicomTags.Modality === "CT");

  beforeAll(async () => {
    orthanc = await startOrthanc({ stableAgeSeconds: 2 });
    service = await startService(orthanc);
  });

  afterAll(async () => {
    await service?.stop();
    service?.remove();
    await orthanc?.stop();
  });

  it("derives a 261-instance series in the same study and frame of reference from the NCCT series", async () => {
    const [ncctId] = await orthanc.uploadFolder(ctSeriesFolder("lidc-idri-0002-ncct"));
    await orthanc.uploadFolder(ctSeriesFolder("lidc-idri-0001-cect"));
    ncctSeries = await seriesOf(ncctId!);
    const jobs = await doneJobs(ncctSeries.MainDicomTags.SeriesInstanceUID!);
    const job = jobOf(jobs, "ncct-syncta");
    expect(job.provider).toBe("cpu");

    const derived = await derivedCtOf(ncctSeries);
    expect(derived).toHaveLength(1);
    expect(derived[0]!.MainDicomTags.SeriesInstanceUID).toBe(job.outputSeriesUid);
    expect(derived[0]!.Instances).toHaveLength(261);

    const sourceTags = await Promise.all(ncctSeries.Instances.map(tagsOf));
    const derivedTags = await Promise.all(derived[0]!.Instances.map(tagsOf));
    const frames = new Set(derivedTags.map((t) => t.FrameOfReferenceUID));
    expect([...frames]).toEqual([sourceTags[0]!.FrameOfReferenceUID]);
    const positions = (tags: Record<string, unknown>[]) => tags.map((t) => String(t.ImagePositionPatient)
      .split("\\").map((v) => Number(v).toFixed(3)).join("\\")).sort();
    expect(positions(derivedTags)).toEqual(positions(sourceTags));
    for (const tags of derivedTags) {
      expect(String(tags.ImageType)).toMatch(/^DERIVED\\SECONDARY/);
      expect(String(tags.SeriesDescription)).toMatch(/AI-generated/i);
      expect(tags.StudyInstanceUID).toBe(sourceTags[0]!.StudyInstanceUID);
      expect(tags.PatientID).toBe(sourceTags[0]!.PatientID);
    }
    // No PHI in the service's logs: neither the patient's ID nor name appears, though the service handled both.
    for (const phi of [sourceTags[0]!.PatientID, sourceTags[0]!.PatientName]) {
      if (typeof phi === "string" && phi.length > 0) expect(service.log()).not.toContain(phi);
    }
  }, 900_000);

  it("stores the nodule findings as one TID 1500 SR, and one SEG holding exactly the SR's findings, in the same study", async () => {
    const detection = jobOf(await doneJobs(ncctSeries.MainDicomTags.SeriesInstanceUID!), "ncct-nodules");
    const inStudy = await studySeries(ncctSeries.ParentStudy);
    const srSeries = inStudy.filter((s) => s.MainDicomTags.Modality === "SR");
    expect(srSeries.map((s) => s.MainDicomTags.SeriesInstanceUID)).toEqual([detection.outputSeriesUid]);
    expect(srSeries[0]!.Instances).toHaveLength(1);
    const sr = await naturalizedInstance(srSeries[0]!.Instances[0]!);
    expect(sr.SOPClassUID).toBe("1.2.840.10008.5.1.4.1.1.88.34"); // Comprehensive 3D SR
    // Each finding is one TID 1411 group (with its segment) and one TID 1410 group (its centroid), same tracking UID.
    const groups = contentTree(sr).children!.find((c) => c.concept?.includes("Imaging Measurements"))!.children!;
    const volumetric = groups.filter((g) => g.template === "DCMR 1411");
    const trackingUids = volumetric.map((g) => g.children!.find((c) => c.concept?.includes("Tracking Unique Identifier"))!.value);
    const doneEvent = (await service.api<{ events: { kind: string; message: string }[] }>(`/jobs/${detection.id}`))
      .events.find((e) => e.kind === "done")!;
    expect(doneEvent.message).toMatch(new RegExp(`^${volumetric.length} finding\\(s\\);`));

    const segSeries = inStudy.filter((s) => s.MainDicomTags.Modality === "SEG");
    if (volumetric.length === 0) {
      expect(segSeries, "no finding, no SEG").toEqual([]);
      expect(groups.map((g) => g.template)).toEqual(["DCMR 1501"]); // "Nodule: Absent"
      return;
    }
    expect(groups.filter((g) => g.template === "DCMR 1410")).toHaveLength(volumetric.length);
    expect(segSeries).toHaveLength(1);
    expect(segSeries[0]!.Instances).toHaveLength(1);
    const seg = await naturalizedInstance(segSeries[0]!.Instances[0]!);
    const segments = seg.SegmentSequence as { TrackingUID: string }[];
    expect(segments.map((segment) => segment.TrackingUID)).toEqual(trackingUids);
  }, 120_000);

  it("writes instances that dciodvfy passes with zero errors, every one (derived CT, SR, SEG)", async () => {
    const written = (await studySeries(ncctSeries.ParentStudy)).filter((s) => s.ID !== ncctSeries.ID);
    const derived = { Instances: written.flatMap((s) => s.Instances) };
    const folder = mkdtempSync(path.join(tmpdir(), "ct-enhance-dciodvfy-"));
    try {
      const failures: string[] = [];
      let next = 0;
      const verifier = async (): Promise<void> => {
        while (next < derived.Instances.length) {
          const instance = derived.Instances[next++]!;
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

  it("skips the contrast series and records why", async () => {
    const series = await orthanc.rest<string[]>("/series");
    const cect = (await Promise.all(series.map(seriesOf))).find((s) => s.MainDicomTags.ContrastBolusAgent === "IV")!;
    const decisions = await waitFor("a decision for the contrast series", async () => {
      const found = await service.api<{ decision: string; reason: string }[]>(`/decisions?series=${cect.ID}`);
      return found.length > 0 ? found : undefined;
    }, 60_000, service);
    expect(decisions.every((d) => d.decision === "skipped")).toBe(true);
    expect(decisions[0]!.reason).toMatch(/ContrastBolusAgent is 'IV'/);
    const jobs = await service.api<Job[]>(`/jobs?series=${encodeURIComponent(cect.MainDicomTags.SeriesInstanceUID!)}`);
    expect(jobs).toEqual([]);
  }, 120_000);

  it("writes no second derived series after a restart", async () => {
    const seriesBeforeRestart = (await studySeries(ncctSeries.ParentStudy)).length;
    await service.stop();
    await service.start();
    await waitFor("the restarted feed to catch up", async () => {
      const feed = await service.api<{ caughtUp: boolean }>("/feed");
      return feed.caughtUp ? true : undefined;
    }, 60_000, service);
    await new Promise((r) => setTimeout(r, 5_000)); // a few watcher passes
    const inStudy = await studySeries(ncctSeries.ParentStudy);
    expect(inStudy).toHaveLength(seriesBeforeRestart);
    expect(await derivedCtOf(ncctSeries)).toHaveLength(1);
    const jobs = await service.api<Job[]>("/jobs");
    expect(jobs.filter((j) => j.sourceSeriesUid === ncctSeries.MainDicomTags.SeriesInstanceUID)).toHaveLength(2);
  }, 180_000);

  it("processes the JPEG-Lossless series too (Orthanc transcodes over WADO-RS)", async () => {
    const [id] = await orthanc.uploadFolder(ctSeriesFolder("ricord-ncct-jpegls"));
    const source = await seriesOf(id!);
    const job = jobOf(await doneJobs(source.MainDicomTags.SeriesInstanceUID!), "ncct-syncta");
    const derivedId = (await orthanc.rest<{ ID: string; Type: string }[]>("/tools/lookup", {
      method: "POST",
      body: job.outputSeriesUid!,
    })).find((hit) => hit.Type === "Series")!.ID;
    const derived = await seriesOf(derivedId);
    expect(derived.Instances).toHaveLength(255);
    expect(derived.ParentStudy).toBe(source.ParentStudy);
  }, 900_000);
});
