/**
 * Crash safety (issue 14): the built service is killed (SIGKILL) at chosen points of a job, a synthesis job (derived
 * CT) and a detection job (SR + SEG) over one 20-slice real series, and started again each time on the same data
 * folder. Each kill waits until the API shows the job in the stage it aims at (fetch, infer, store), then a seeded
 * random delay inside it. At the end: one job per pipeline, done, none left running; in Orthanc exactly one derived
 * CT of as many instances as the source, one SR, one SEG when the SR reports a finding; nothing left in the spool.
 * CT_ENHANCE_CRASH_KILLS (default 6; `npm run soak` runs 10) and CT_ENHANCE_CRASH_SEED choose how many and where.
 */
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { data } from "dcmjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { measurementGroups } from "../helpers/air-checklist.js";
import { requireCtData } from "../helpers/ct-data.js";
import { contiguousSubset, type SeriesSubset } from "../helpers/ct-subset.js";
import { startService, waitFor, type TestService } from "../helpers/ct-service.js";
import { REPO_ROOT, startOrthanc, type TestOrthanc } from "../helpers/orthanc.js";
import { requireOrthanc } from "../helpers/system-tools.js";

const ready = requireCtData("lidc-idri-0002-ncct") && requireOrthanc();
const SLICES = 20;
const KILLS = Number(process.env.CT_ENHANCE_CRASH_KILLS ?? 6);
const SEED = Number(process.env.CT_ENHANCE_CRASH_SEED ?? 14);
const PIPELINES = ["ncct-syncta", "ncct-nodules"] as const;
/** Where each pipeline's kills aim, in turn: the fetch, the model, and the store (the derived CT; the SEG and SR). */
const AIMS = ["fetch", "infer", "store", "store", "infer"] as const;

interface Job { id: number; pipeline: string; state: string; stage: string | null; errorMessage: string | null; outputSeriesUid: string | null }
interface JobDetail extends Job { events: { kind: string; message: string }[] }
interface OrthancSeries { ID: string; Instances: string[]; MainDicomTags: { Modality?: string; SeriesInstanceUID: string } }
interface Kill {
  pipeline: string; aim: string; stage: string | null; state: string; delayMs: number; outputInstances: number;
  /** Jobs of any pipeline running at the last look before the kill: each can be recovered once after it. */
  runningJobs: number;
}

/** A small seeded generator (the same kills for the same seed). */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

describe.runIf(ready)("crash safety: SIGKILL at chosen points of a job, restart each time (real Orthanc, built service)", () => {
  let orthanc: TestOrthanc;
  let service: TestService;
  let subset: SeriesSubset;
  const random = seeded(SEED);

  const seriesInOrthanc = async (): Promise<OrthancSeries[]> => orthanc.rest<OrthancSeries[]>("/series?expand");
  /** Instances in Orthanc besides the source's: what the jobs had stored. */
  const outputInstances = async (): Promise<number> => (await seriesInOrthanc()).reduce((n, s) => n + s.Instances.length, 0) - SLICES;

  beforeAll(async () => {
    subset = contiguousSubset("lidc-idri-0002-ncct", SLICES);
    orthanc = await startOrthanc({ stableAgeSeconds: 2 });
    const configFile = path.join(subset.folder, "..", `${path.basename(subset.folder)}-config.json`);
    // Two instances a request, one request at a time: the store lasts long enough for a kill to land inside it.
    writeFileSync(configFile, JSON.stringify({ store: { instancesPerRequest: 2, parallelRequests: 1 } }));
    service = await startService(orthanc, {
      CT_ENHANCE_PIPELINES_FILE: path.join(REPO_ROOT, "tests", "fixtures", "pipelines-air.json"),
      CT_ENHANCE_MODELS_DIR: path.join(REPO_ROOT, "tests", "fixtures", "air-models"),
      CT_ENHANCE_CONFIG: configFile,
      CT_ENHANCE_RECONCILE_CRON: "off",
      CT_ENHANCE_CPU_THREADS: "1",
    });
    await orthanc.uploadFolder(subset.folder);
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
    service?.remove();
    await orthanc?.stop();
    subset?.remove();
    if (subset) rmSync(`${subset.folder}-config.json`, { force: true });
  });

  /** Waits until the pipeline's job runs in stage `aim` (answers it), or has finished (answers undefined). */
  const reach = async (pipeline: string, aim: string): Promise<Job | undefined> => {
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      const job = (await service.api<Job[]>("/jobs")).find((j) => j.pipeline === pipeline);
      if (job?.state === "running" && job.stage === aim) return job;
      if (job && ["done", "failed", "skipped", "rejected"].includes(job.state)) return undefined;
      await new Promise((r) => setTimeout(r, 40));
    }
    throw new Error(`the ${pipeline} job did not reach ${aim} in 120 s:\n${service.log().slice(-3000)}`);
  };

  it(`ends with one whole output per pipeline after ${KILLS} kills`, async () => {
    const started = Date.now();
    const kills: Kill[] = [];
    const plan = Array.from({ length: KILLS }, (_, i) => ({ pipeline: PIPELINES[i < KILLS / 2 ? 0 : 1], aim: AIMS[i % AIMS.length]! }));
    for (const { pipeline, aim } of plan) {
      const job = await reach(pipeline, aim);
      if (!job) continue; // finished before this aim came round again: that kill has nothing to hit
      // Somewhere inside the stage: the store of 20 instances lasts ~0.5 s, the fetch less, the model seconds.
      const delayMs = Math.floor(random() * (aim === "infer" ? 3000 : 300));
      await new Promise((r) => setTimeout(r, delayMs));
      const all = await service.api<Job[]>("/jobs");
      const now = all.find((j) => j.pipeline === pipeline)!;
      await service.stop("kill");
      kills.push({
        pipeline, aim, stage: now.stage, state: now.state, delayMs, outputInstances: await outputInstances(),
        runningJobs: all.filter((j) => j.state === "running").length,
      });
      await service.start();
    }

    const jobs = await waitFor("both jobs finished", async () => {
      const all = await service.api<Job[]>("/jobs");
      return all.length >= 2 && all.every((j) => !["queued", "running", "retry-wait"].includes(j.state)) ? all : undefined;
    }, 180_000, service);
    console.info(`crash test: ${kills.length} kills (seed ${SEED}) in ${((Date.now() - started) / 1000).toFixed(1)} s: ` +
      kills.map((k) => `${k.pipeline}@${k.aim}+${k.delayMs}ms->${k.state}/${k.stage ?? "-"} (${k.outputInstances} output instances in Orthanc)`).join("; "));

    // The ledger: one job per pipeline, each done, none running; every kill that hit a running job was recovered.
    expect(jobs.map((j) => j.pipeline).sort()).toEqual([...PIPELINES].sort());
    for (const job of jobs) expect(job.state, `${job.pipeline}: ${job.errorMessage ?? ""}`).toBe("done");
    const details = await Promise.all(jobs.map((j) => service.api<JobDetail>(`/jobs/${j.id}`)));
    const recovered = details.flatMap((d) => d.events).filter((e) => e.kind === "recovered").length;
    // (A job may end between the look and the kill: then that kill found nothing running. A kill aimed at one
    // pipeline's job also stops the other's when it runs, so the bound counts every job running at the look, plus
    // one for a job that started between the look and the kill.)
    expect(recovered).toBeGreaterThan(0);
    expect(recovered).toBeLessThanOrEqual(kills.reduce((n, k) => n + Math.min(k.runningJobs + 1, PIPELINES.length), 0));

    // Orthanc: the source, one whole derived CT, one SR, and one SEG when the SR reports findings; nothing else.
    const synthesis = jobs.find((j) => j.pipeline === "ncct-syncta")!;
    const detection = details.find((d) => d.pipeline === "ncct-nodules")!;
    const series = await seriesInOrthanc();
    const byModality = (modality: string) => series.filter((s) => s.MainDicomTags.Modality === modality);
    // The findings as the stored SR tells them, against the job's end: a kill after the SR's store and before the job's
    // end leaves the next attempt a complete output, which ends "already stored" with the count it read back from it.
    const srInstances = byModality("SR").flatMap((s) => s.Instances);
    expect(srInstances).toHaveLength(1);
    const srBytes = await orthanc.restBytes(`/instances/${srInstances[0]}/file`);
    const sr = data.DicomMetaDictionary.naturalizeDataset(data.DicomMessage.readFile(new Uint8Array(srBytes).buffer).dict);
    const findings = measurementGroups(sr).filter((g) => g.template === "DCMR 1411").length; // one volumetric ROI group per finding
    const done = detection.events.find((e) => e.kind === "done")!.message;
    const reported = /(\d+) finding\(s\)/.exec(done)?.[1];
    expect(reported, `the job's end gives a finding count: ${done}`).toBeDefined();
    expect(findings, `the SR's measurement groups against the timeline: ${done}`).toBe(Number(reported));
    console.info(`crash test: the stored SR holds ${findings} finding(s); the job's end: ${done}`);
    const derived = byModality("CT").filter((s) => s.MainDicomTags.SeriesInstanceUID === synthesis.outputSeriesUid);
    expect(derived).toHaveLength(1);
    expect(derived[0]!.Instances).toHaveLength(SLICES);
    expect(byModality("CT")).toHaveLength(2);
    expect(byModality("SR").map((s) => s.Instances.length)).toEqual([1]);
    expect(byModality("SEG").map((s) => s.Instances.length)).toEqual(findings > 0 ? [1] : []);
    expect(series).toHaveLength(3 + (findings > 0 ? 1 : 0));
    // Nothing a dead process held is left on disk.
    const spool = path.join(service.dataDir, "spool");
    expect(readdirSync(spool).filter((f) => f.endsWith(".held"))).toEqual([]);
  }, 600_000);
});
