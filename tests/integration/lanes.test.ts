/**
 * Issue 15, embedded mode, through the built service and a real Orthanc (small real series under new UIDs): an urgent
 * series (its AccessionNumber matches the site's urgent rule) that arrives behind 20 routine ones starts next, read
 * from the ledger's start order; a series two pipelines select is fetched over WADO-RS once for both jobs, and the
 * next series' fetch runs while the model of the job before it computes (counted by a proxy in front of Orthanc, and
 * read from the job timelines); an off-peak job waits, queued, until its window (seconds 0-3 of every 15 here) opens.
 */
import http from "node:http";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireCtData } from "../helpers/ct-data.js";
import { startService, type TestService, waitFor } from "../helpers/ct-service.js";
import { freshSeries, type FreshSeries } from "../helpers/fresh-series.js";
import { freePort, REPO_ROOT, startOrthanc, type TestOrthanc } from "../helpers/orthanc.js";
import { requireOrthanc } from "../helpers/system-tools.js";

const ready = requireCtData("lidc-idri-0002-ncct") && requireOrthanc();

/** Open at seconds 0-3 of every 15: it opens within 15 s of any moment, and is closed most of the time. */
const WINDOW = "0-3,15-18,30-33,45-48 * * * * *";
const windowOpen = (at: Date): boolean => at.getSeconds() % 15 <= 3;
const ROUTINE = 20;

interface JobEvent { at: string; kind: string; message: string }
interface Job { id: number; state: string; lane: string; pipeline: string; sourceSeriesUid: string }
interface JobDetail extends Job { events: JobEvent[] }
const ENDED = ["done", "failed", "skipped", "rejected", "cancelled"];

/** An HTTP proxy in front of Orthanc that counts WADO-RS series retrievals (GET .../studies/x/series/y). */
async function countingProxy(target: string): Promise<{ url: string; seriesFetches: () => string[]; close(): Promise<void> }> {
  const { hostname, port } = new URL(target);
  const fetches: string[] = [];
  const server = http.createServer((request, response) => {
    if (request.method === "GET" && /\/studies\/[^/]+\/series\/[^/?]+(\?|$)/.test(request.url ?? "")) fetches.push(request.url!);
    const upstream = http.request({ hostname, port, path: request.url, method: request.method, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    });
    upstream.on("error", () => response.destroy());
    request.pipe(upstream);
  });
  const proxyPort = await freePort();
  await new Promise<void>((resolve) => server.listen(proxyPort, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${proxyPort}`,
    seriesFetches: () => [...fetches],
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The slice count of the series two pipelines select (the fault hook holds its models; see the service settings). */
const TWICE_SLICES = 11;

describe.runIf(ready)("priority lanes and one fetch for several models (real Orthanc, built service)", () => {
  let orthanc: TestOrthanc;
  let proxy: Awaited<ReturnType<typeof countingProxy>>;
  let service: TestService;
  const made: FreshSeries[] = [];
  const series = (count: number, header: Record<string, string>): FreshSeries => {
    const fresh = freshSeries("lidc-idri-0002-ncct", count, header);
    made.push(fresh);
    return fresh;
  };
  const jobs = () => service.api<Job[]>("/jobs");
  const detail = (id: number) => service.api<JobDetail>(`/jobs/${id}`);
  const jobsOf = async (uid: string) => (await jobs()).filter((j) => j.sourceSeriesUid === uid);
  /** The first test's backlog is not the next tests': cancelled, so they start from an idle queue, even when it failed. */
  const cancelBacklog = async (): Promise<void> => {
    for (const job of await jobs()) {
      if (job.state === "queued") await service.api(`/jobs/${job.id}/cancel`, { method: "POST" });
    }
    await waitFor("the queue to be idle", async () => ((await jobs()).every((j) => ENDED.includes(j.state)) ? true : undefined), 90_000, service);
  };
  const eventAt = (job: JobDetail, kind: string, from = 0): number => {
    const event = job.events.filter((e) => e.kind === kind)[from];
    if (!event) throw new Error(`job ${job.id} has no '${kind}' event: ${job.events.map((e) => e.kind).join(", ")}`);
    return Date.parse(event.at);
  };

  beforeAll(async () => {
    orthanc = await startOrthanc({ stableAgeSeconds: 1 });
    proxy = await countingProxy(orthanc.url);
    service = await startService(orthanc, {
      CT_ENHANCE_PIPELINES_FILE: path.join(REPO_ROOT, "tests", "fixtures", "pipelines-lanes.json"),
      CT_ENHANCE_MODELS_DIR: path.join(REPO_ROOT, "tests", "fixtures", "operator-models"),
      CT_ENHANCE_ORTHANC_URL: proxy.url,
      CT_ENHANCE_RECONCILE_CRON: "off",
      CT_ENHANCE_OFF_PEAK_WINDOW: WINDOW,
      // The series two pipelines select (11 slices) holds each of its models for 4 s (the fault hook; no other series
      // here has 11 slices): long enough for the next series to be queued before the second job's model starts, so the
      // prefetch beside it does not hang on how fast the machine runs a 10-slice model.
      CT_ENHANCE_FAULT_STALL_INFERENCE_SLICES: String(TWICE_SLICES),
      CT_ENHANCE_FAULT_STALL_INFERENCE_MS: "4000",
    });
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
    service?.remove();
    await proxy?.close();
    await orthanc?.stop();
    for (const fresh of made) fresh.remove();
  });

  it(`starts an urgent series that arrives behind ${ROUTINE} routine ones next`, async () => {
    const routine = Array.from({ length: ROUTINE }, (_, i) => series(10, { SeriesDescription: `routine ${i}`, AccessionNumber: `A${i}` }));
    const urgent = series(10, { SeriesDescription: "urgent", AccessionNumber: "ER-0001" });
    for (const fresh of routine) await orthanc.upload(fresh.files);
    await waitFor(`${ROUTINE} routine jobs`, async () => ((await jobs()).length === ROUTINE ? true : undefined), 60_000, service);
    const metrics = await (await fetch(`${service.apiUrl}/metrics`, { headers: { Authorization: `Bearer ${service.token}` } })).text();
    const routineDepth = Number(/ct_enhance_lane_queue_depth\{lane="routine"\} (\d+)/.exec(metrics)?.[1]);
    expect(routineDepth).toBeGreaterThanOrEqual(ROUTINE - 3);

    await orthanc.upload(urgent.files);
    const [urgentJob] = await waitFor("the urgent job to start", async () => {
      const mine = await jobsOf(urgent.seriesInstanceUid);
      return mine.length === 1 && mine[0]!.state !== "queued" ? mine : undefined;
    }, 90_000, service);
    expect(urgentJob!.lane).toBe("urgent");
    expect((await service.api<Job[]>("/jobs?lane=urgent")).map((j) => j.id)).toEqual([urgentJob!.id]);

    const all = await Promise.all((await jobs()).map((j) => detail(j.id)));
    const urgentDetail = all.find((j) => j.id === urgentJob!.id)!;
    expect(urgentDetail.events.find((e) => e.kind === "queued")!.message).toMatch(/urgent lane \(the site's urgent rule matches/);
    const queuedAt = eventAt(urgentDetail, "queued");
    const startedAt = eventAt(urgentDetail, "started");
    const starts = all.flatMap((j) => j.events.filter((e) => e.kind === "started").map((e) => ({ id: j.id, at: Date.parse(e.at) })))
      .sort((a, b) => a.at - b.at);
    // No other job started between the urgent job's arrival and its start: it was the very next start.
    expect(starts.filter((s) => s.at > queuedAt && s.at < startedAt)).toEqual([]);
    expect(starts.find((s) => s.at >= queuedAt)?.id).toBe(urgentJob!.id);
    // And it overtook a backlog: the routine jobs still waiting when it arrived all started after it. How many were
    // still waiting depends on how fast this machine ran the first ones while the urgent series was uploaded and
    // became stable, so the test asks for a real backlog (half of them), not for an exact count.
    const startOf = (j: JobDetail): number => {
      const start = j.events.find((e) => e.kind === "started");
      return start ? Date.parse(start.at) : Number.POSITIVE_INFINITY;
    };
    const waiting = all.filter((j) => j.lane === "routine" && eventAt(j, "queued") < queuedAt && startOf(j) > queuedAt);
    expect(waiting.length).toBeGreaterThanOrEqual(ROUTINE / 2);
    expect(waiting.filter((j) => startOf(j) <= startedAt)).toEqual([]);
  }, 200_000);

  it("fetches a series two pipelines select once, and the next series while the model runs", async () => {
    await cancelBacklog();
    const before = proxy.seriesFetches().length;
    const twice = series(TWICE_SLICES, { SeriesDescription: "twice", AccessionNumber: "B1" });
    const next = series(10, { SeriesDescription: "plain", AccessionNumber: "B2" });
    await orthanc.upload(twice.files);
    await waitFor("both jobs of the series", async () => ((await jobsOf(twice.seriesInstanceUid)).length === 2 ? true : undefined), 60_000, service);
    await orthanc.upload(next.files);
    const ended = async (uid: string, count: number) => {
      const mine = await jobsOf(uid);
      return mine.length === count && mine.every((j) => ENDED.includes(j.state)) ? mine : undefined;
    };
    const [first, second] = (await waitFor("the series' two jobs to end", () => ended(twice.seriesInstanceUid, 2), 120_000, service))
      .sort((a, b) => a.id - b.id).map((j) => j.id) as [number, number];
    const [third] = (await waitFor("the next series' job to end", () => ended(next.seriesInstanceUid, 1), 120_000, service)).map((j) => j.id);
    const [a, b, c] = await Promise.all([first, second, third!].map(detail));

    // Three jobs, two WADO-RS retrievals: the second pipeline's job took the first one's volume.
    expect(proxy.seriesFetches().slice(before)).toHaveLength(2);
    expect(a!.events.some((e) => e.kind.startsWith("volume-"))).toBe(false);
    expect(b!.events.find((e) => e.kind === "volume-reused")?.message).toContain(`job ${first} assembled from the same ${TWICE_SLICES} instances`);
    expect(c!.events.find((e) => e.kind === "volume-prefetched")?.message).toContain(`while job ${second} ran`);
    // The next series was fetched while the second job's model ran: between its infer stage and its 'inferred'.
    const inferFrom = Date.parse(b!.events.find((e) => e.kind === "stage" && e.message === "infer")!.at);
    const inferTo = eventAt(b!, "inferred");
    const prefetchFrom = eventAt(c!, "prefetch");
    const prefetchTo = eventAt(c!, "prefetched");
    expect(prefetchFrom).toBeGreaterThanOrEqual(inferFrom);
    expect(prefetchTo).toBeLessThanOrEqual(inferTo);
    expect(eventAt(c!, "started")).toBeGreaterThan(inferTo);
    for (const job of [a, b, c]) expect(job!.state).toBe("done");
  }, 200_000);

  it("keeps an off-peak job queued until its window opens", async () => {
    const night = series(10, { SeriesDescription: "night", AccessionNumber: "C1" });
    // Upload just after the window closed, so the job is queued while it is closed.
    await waitFor("the window to have just closed", async () => ([4, 5].includes(new Date().getSeconds() % 15) ? true : undefined), 25_000);
    await orthanc.upload(night.files);
    const seenQueuedWhileClosed: string[] = [];
    const [job] = await waitFor("the off-peak job to start", async () => {
      const mine = await jobsOf(night.seriesInstanceUid);
      const at = new Date();
      if (mine[0]?.state === "queued" && !windowOpen(at)) seenQueuedWhileClosed.push(at.toISOString());
      return mine[0] && mine[0].state !== "queued" ? mine : undefined;
    }, 60_000, service);
    expect(job!.lane).toBe("off-peak");
    expect(seenQueuedWhileClosed.length).toBeGreaterThan(0);
    const timeline = await detail(job!.id);
    const queuedAt = new Date(eventAt(timeline, "queued"));
    const startedAt = new Date(eventAt(timeline, "started"));
    expect(windowOpen(queuedAt)).toBe(false);
    expect(windowOpen(startedAt)).toBe(true);
    const schedules = await service.api<{ name: string; cron: string }[]>("/schedules");
    expect(schedules.find((s) => s.name === "off-peak")?.cron).toBe(WINDOW);
  }, 90_000);
});
