/**
 * Bad and odd input that needs the running service (issue 14), with a real Orthanc and the built service: series made
 * in the test setup from real LIDC-IDRI-0002 slices (every 4th row and column: 128x128, so the model is quick), sent
 * the ways a PACS gets them. Each ends processed (the derived series checked against its source) or with a decision or
 * a failed job whose reason names what is wrong; the service keeps answering throughout.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { edit, realSlices, testUid } from "../helpers/bad-input-corpus.js";
import { requireCtData } from "../helpers/ct-data.js";
import { OPERATOR_TEST_PIPELINES, startService, type TestService, waitFor } from "../helpers/ct-service.js";
import { startOrthanc, type TestOrthanc } from "../helpers/orthanc.js";
import { requireOrthanc, requireTools } from "../helpers/system-tools.js";

const ready = requireCtData("lidc-idri-0002-ncct") && requireOrthanc() && requireTools("dcmcjpls");
/** Slices of the deleted-series case's busy series: a count no other series in this file has (the fault hook keys on it). */
const BUSY_SLICES = 26;

interface Job { id: number; state: string; sourceOrthancId: string; sourceSeriesUid: string; outputSeriesUid: string | null; errorMessage: string | null }
interface Decision { pipeline: string | null; decision: string; reason: string }
type Tags = Record<string, string>;

describe.runIf(ready)("bad and odd input through the service (real Orthanc, built service)", () => {
  let orthanc: TestOrthanc;
  let service: TestService;
  let slices: Uint8Array[];
  let scratch: string;
  const studyUid = testUid();

  /** The slices as a new series of the study (new series and instance UIDs), header edits applied. */
  const asSeries = (from: Uint8Array[], change: (h: Record<string, unknown>) => void = () => undefined): Uint8Array[] => {
    const seriesUid = testUid();
    return from.map((bytes) => edit(bytes, (h) => {
      Object.assign(h, { StudyInstanceUID: studyUid, SeriesInstanceUID: seriesUid, SOPInstanceUID: testUid() });
      change(h);
    }));
  };
  const upload = async (instances: Uint8Array[]): Promise<string> => {
    let id = "";
    for (const body of instances) id = (await orthanc.rest<{ ParentSeries: string }>("/instances", { method: "POST", body })).ParentSeries;
    return id;
  };
  const jobsOf = async (orthancId: string): Promise<Job[]> =>
    (await service.api<Job[]>("/jobs")).filter((j) => j.sourceOrthancId === orthancId);
  const decisionsOf = (orthancId: string): Promise<Decision[]> => service.api<Decision[]>(`/decisions?series=${orthancId}`);
  const jobEnded = (orthancId: string, timeoutMs = 90_000): Promise<Job> =>
    waitFor(`the job of series ${orthancId} to end`, async () => {
      const [job] = await jobsOf(orthancId);
      return job && ["done", "failed", "skipped", "rejected"].includes(job.state) ? job : undefined;
    }, timeoutMs, service);
  const seriesOfUid = async (uid: string): Promise<string | undefined> =>
    (await orthanc.rest<{ ID: string; Type: string }[]>("/tools/lookup", { method: "POST", body: uid })).find((h) => h.Type === "Series")?.ID;
  const reconcile = () => service.api("/schedules/reconcile/run", { method: "POST" });

  beforeAll(async () => {
    slices = realSlices("lidc-idri-0002-ncct", 28, 4).slices;
    scratch = mkdtempSync(path.join(tmpdir(), "ct-enhance-badinput-"));
    orthanc = await startOrthanc({ stableAgeSeconds: 2 });
    service = await startService(orthanc, {
      ...OPERATOR_TEST_PIPELINES,
      CT_ENHANCE_RECONCILE_CRON: "off",
      // The fault hook holds the model 6 s on the deleted-series case's busy series (its slice count is no other
      // series' here), so the series behind it is still queued when it is deleted, however fast the machine.
      CT_ENHANCE_FAULT_STALL_INFERENCE_SLICES: String(BUSY_SLICES),
      CT_ENHANCE_FAULT_STALL_INFERENCE_MS: "6000",
    });
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
    service?.remove();
    await orthanc?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  let processed: { sourceId: string; instances: Uint8Array[]; job: Job };

  it("JPEG-LS series: Orthanc transcodes it over WADO-RS; processed onto the source's geometry", async () => {
    const instances = asSeries(slices.slice(0, 24)).map((bytes, k) => {
      const [plain, packed] = [path.join(scratch, `a${k}.dcm`), path.join(scratch, `a${k}.jls.dcm`)];
      writeFileSync(plain, bytes);
      execFileSync("dcmcjpls", [plain, packed]);
      return new Uint8Array(readFileSync(packed));
    });
    const sourceId = await upload(instances);
    const job = await jobEnded(sourceId);
    expect(job, job.errorMessage ?? "").toMatchObject({ state: "done" });
    const outputId = (await seriesOfUid(job.outputSeriesUid!))!;
    const [source, output] = await Promise.all([sourceId, outputId].map(async (id) =>
      Object.values(await orthanc.rest<Record<string, Tags>>(`/series/${id}/instances-tags?simplify`))));
    expect(output).toHaveLength(24);
    const byPosition = (tags: Tags[]) => tags.map((t) => [t.ImagePositionPatient, t.PixelSpacing, t.Rows, t.ImageOrientationPatient].join(" ")).sort();
    expect(byPosition(output!)).toEqual(byPosition(source!));
    expect(output![0]!.FrameOfReferenceUID).toBe(source![0]!.FrameOfReferenceUID);
    processed = { sourceId, instances, job };
  }, 120_000);

  it("a study re-sent with the same UIDs: no new job, no second output", async () => {
    await new Promise((r) => setTimeout(r, 1_500));
    await upload(processed.instances);
    await reconcile();
    await new Promise((r) => setTimeout(r, 6_000)); // longer than stable age plus a watcher pass
    expect(await jobsOf(processed.sourceId)).toHaveLength(1);
    const study = await orthanc.rest<{ Series: string[] }>(`/series/${processed.sourceId}/study`);
    expect(study.Series.length).toBe(2); // the source and its one derived series
    const source = await orthanc.rest<{ Instances: string[] }>(`/series/${processed.sourceId}`);
    expect(source.Instances).toHaveLength(24);
  }, 60_000);

  it("a series that grows after it was decided: the decision says it grew and that the output does not cover it", async () => {
    await new Promise((r) => setTimeout(r, 1_500));
    const template = await orthanc.rest<Tags>(`/instances/${(await orthanc.rest<{ Instances: string[] }>(`/series/${processed.sourceId}`)).Instances[0]}/simplified-tags`);
    const more = slices.slice(24, 28).map((bytes) => edit(bytes, (h) => Object.assign(h, {
      StudyInstanceUID: studyUid, SeriesInstanceUID: template.SeriesInstanceUID, SOPInstanceUID: testUid(),
    })));
    expect(await upload(more)).toBe(processed.sourceId);
    await reconcile();
    const grown = await waitFor("a decision on the grown series", async () => {
      const all = await decisionsOf(processed.sourceId);
      return all.find((d) => /grew/.test(d.reason));
    }, 30_000, service);
    expect(grown.reason).toMatch(new RegExp(`^the series grew from 24 to 28 instances after job ${processed.job.id} \\(state done\\) fetched it, .*re-run it`));
    expect(await jobsOf(processed.sourceId)).toHaveLength(1);
  }, 60_000);

  it("our own output deleted by a user: not silently recreated", async () => {
    await orthanc.deleteSeries(processed.job.outputSeriesUid!);
    await reconcile();
    await new Promise((r) => setTimeout(r, 6_000));
    expect(await seriesOfUid(processed.job.outputSeriesUid!)).toBeUndefined();
    const jobs = await jobsOf(processed.sourceId);
    expect(jobs.map((j) => [j.id, j.state])).toEqual([[processed.job.id, "done"]]);
  }, 60_000);

  it("a non-CT modality with CT-looking tags (Modality MR, CT Image Storage, rescale to HU): skipped by the rules, saying why", async () => {
    const sourceId = await upload(asSeries(slices.slice(0, 24), (h) => (h.Modality = "MR")));
    const decision = await waitFor("the decision", async () => (await decisionsOf(sourceId))[0], 30_000, service);
    expect(decision).toMatchObject({ decision: "skipped", reason: "Modality is 'MR' (rule: must be 'CT')" });
    expect(await jobsOf(sourceId)).toEqual([]);
  }, 60_000);

  it("a series deleted after it was selected, before or while it is fetched: the job fails for good, saying so", async () => {
    // A series of full 512x512 slices, its model held 6 s by the fault hook, keeps the single job runner busy while
    // the second series is queued behind it (without the hold, a quiet machine finished it first: the job was done).
    const busy = asSeries(realSlices("lidc-idri-0002-ncct", BUSY_SLICES, 1).slices);
    const busyId = await upload(busy);
    await waitFor("the first job running", async () => ((await jobsOf(busyId))[0]?.state === "running" ? true : undefined), 60_000, service);
    const doomed = asSeries(slices.slice(0, 24));
    const doomedId = await upload(doomed);
    await waitFor("the second job queued", async () => ((await jobsOf(doomedId))[0] ? true : undefined), 30_000, service);
    await orthanc.rest(`/series/${doomedId}`, { method: "DELETE" });
    const job = await jobEnded(doomedId, 120_000);
    expect(job.state).toBe("failed");
    expect(job.errorMessage).toMatch(/^the source series [\d.]+ \(Orthanc [0-9a-f-]+\) is no longer in Orthanc: it was deleted (after it was selected|while it was fetched)/);
    expect((await jobEnded(busyId, 120_000)).state).toBe("done");
  }, 240_000);

  it("JPEG 2000 that this Orthanc cannot decode: the job fails with a reason that names it", async () => {
    const instances = asSeries(slices.slice(0, 24)).map((bytes) => edit(bytes, () => undefined, "1.2.840.10008.1.2.4.90"));
    let sourceId: string;
    try {
      sourceId = await upload(instances);
    } catch (error) {
      // Orthanc refusing the upload is an acceptable end too: nothing reaches ct-enhance.
      expect(String(error)).toMatch(/Orthanc 4\d\d/);
      return;
    }
    const job = await jobEnded(sourceId, 150_000);
    expect(job.state).toBe("failed");
    expect(job.errorMessage).toMatch(/^Orthanc could not send the series uncompressed \(HTTP 500\): its instances are stored as 1\.2\.840\.10008\.1\.2\.4\.90 \(JPEG 2000 Lossless\), which this Orthanc cannot decode/);
  }, 180_000);

  it("the service answered throughout and logged no defect", async () => {
    expect((await fetch(`${service.apiUrl}/health`)).ok).toBe(true);
    expect(service.log()).not.toMatch(/a defect of ct-enhance|uncaught|unhandled/i);
  });
});
