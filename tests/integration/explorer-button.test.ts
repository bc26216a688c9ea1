/**
 * The "Run again" button in Orthanc Explorer, as a PACS administrator uses it: a real Orthanc with our Python plugin
 * (forwarding to the real service with the token, which the browser never sees), Debian's Chromium driven by
 * playwright-core, a processed series' page, a click, and the new job reaching done with a new derived series.
 * Then the derived series in the Orthanc Web Viewer. Screenshots go to .test-output/ (git-ignored).
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { BrowserContext } from "playwright-core";
import { CHROMIUM, launchChromium, type TestBrowser } from "../helpers/chromium.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireCtData } from "../helpers/ct-data.js";
import { contiguousSubset, type SeriesSubset } from "../helpers/ct-subset.js";
import { startService, waitFor, type TestService, OPERATOR_TEST_PIPELINES } from "../helpers/ct-service.js";
import { freePort, REPO_ROOT, startOrthanc, type TestOrthanc } from "../helpers/orthanc.js";
import { requireOrthanc, requireTools } from "../helpers/system-tools.js";

const ready = requireCtData("lidc-idri-0002-ncct") && requireOrthanc() && requireTools(CHROMIUM);
const ARTIFACTS = path.join(REPO_ROOT, ".test-output");

interface Job { id: number; state: string; run: number; outputSeriesUid: string | null; sourceOrthancId: string; errorMessage: string | null; lane: string }

/** The little of the browser's DOM the page functions below use (the tests compile without the DOM library). */
type PageGlobals = {
  document: {
    querySelectorAll(selector: "canvas"): ArrayLike<{
      width: number;
      height: number;
      getContext(kind: "2d"): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null;
    }>;
  };
};

describe.runIf(ready)("Orthanc Explorer's ct-enhance panel (real Orthanc + plugin, Chromium)", () => {
  let orthanc: TestOrthanc;
  let service: TestService;
  let subset: SeriesSubset;
  let browser: BrowserContext;
  let chrome: TestBrowser | undefined;
  let sourceId: string;
  let firstJob: Job;
  let secondJob: Job;
  const token = `explorer-${Math.random().toString(36).slice(2)}`;

  const api = async <T>(route: string): Promise<T> => {
    const response = await fetch(`${service.apiUrl}${route}`, { headers: { Authorization: `Bearer ${token}` } });
    if (!response.ok) throw new Error(`ct-enhance ${response.status} for ${route}: ${await response.text()}`);
    return (await response.json()) as T;
  };
  const doneJob = (what: string, accept: (job: Job) => boolean) => waitFor(what, async () => {
    const job = (await api<Job[]>(`/jobs?orthancSeries=${sourceId}`))[0];
    if (job?.state === "failed") throw new Error(`job failed: ${job.errorMessage}`);
    return job && job.state === "done" && accept(job) ? job : undefined;
  }, 120_000, service);
  const seriesIdOf = async (uid: string) => (await orthanc.rest<{ ID: string; Type: string }[]>("/tools/lookup", { method: "POST", body: uid }))
    .find((hit) => hit.Type === "Series")!.ID;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    subset = contiguousSubset("lidc-idri-0002-ncct", 24);
    const port = await freePort(); // known before Orthanc starts: the plugin forwards to it
    orthanc = await startOrthanc({ stableAgeSeconds: 2, ctEnhanceApiUrl: `http://127.0.0.1:${port}`, ctEnhanceApiToken: token });
    service = await startService(orthanc, {
      CT_ENHANCE_PORT: String(port),
      CT_ENHANCE_API_TOKEN: token,
      ...OPERATOR_TEST_PIPELINES,
    });
    [sourceId] = (await orthanc.uploadFolder(subset.folder)) as [string];
    firstJob = await doneJob("the first job (by itself, from the feed)", () => true);
    chrome = await launchChromium({ username: orthanc.username, password: orthanc.password }, { width: 1400, height: 1000 });
    browser = chrome.context;
  }, 240_000);

  afterAll(async () => {
    await chrome?.close();
    await service?.stop();
    service?.remove();
    await orthanc?.stop();
    subset?.remove();
  });

  it("runs a processed series again from its page, and shows the new job reach done with a new derived series", async () => {
    const page = await browser.newPage();
    const browserRequests: string[] = [];
    page.on("request", (request) => browserRequests.push(`${request.url()} ${JSON.stringify(request.headers())}`));
    await page.goto(`${orthanc.url}/app/explorer.html#series?uuid=${sourceId}`);
    await page.waitForSelector("#ct-enhance-panel #ct-enhance-rerun");
    await expect.poll(() => page.locator("#ct-enhance-state").textContent(), { timeout: 15_000 }).toBe("done");
    await expect.poll(() => page.locator("#ct-enhance-pipeline option").count()).toBeGreaterThan(0);
    await page.selectOption("#ct-enhance-pipeline", "ncct-syncta");
    await expect.poll(() => page.locator("#ct-enhance-lane").textContent()).toBe("routine lane");
    await page.check("#ct-enhance-urgent"); // issue 15: a person asks for the urgent lane
    await page.click("#ct-enhance-rerun");

    secondJob = await doneJob("the re-run (run 2) to be done", (job) => job.run === 2);
    await expect.poll(() => page.locator("#ct-enhance-job").textContent(), { timeout: 20_000 }).toMatch(/run 2 .*done/s);
    await expect.poll(() => page.locator("#ct-enhance-preview").evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth),
      { timeout: 15_000 }).toBe(512 * 2 + 4);
    await page.screenshot({ path: path.join(ARTIFACTS, "explorer-run-again.png"), fullPage: true });

    expect(secondJob.id).toBe(firstJob.id);
    expect(secondJob.outputSeriesUid).not.toBe(firstJob.outputSeriesUid);
    const derived = await orthanc.rest<{ Instances: string[]; ParentStudy: string }>(`/series/${await seriesIdOf(secondJob.outputSeriesUid!)}`);
    expect(derived.Instances).toHaveLength(24);
    const detail = await api<{ events: { kind: string; message: string }[] }>(`/jobs/${secondJob.id}`);
    expect(detail.events.find((e) => e.kind === "requeued")?.message).toMatch(/orthanc-explorer.*; urgent lane/);
    expect(secondJob.lane).toBe("urgent");
    // The browser only ever talked to Orthanc, and never saw the token.
    expect(browserRequests.every((r) => r.startsWith(orthanc.url) && !r.includes(token))).toBe(true);
    await page.close();
  }, 180_000);

  it("opens the derived series in the Orthanc Web Viewer served by the same Orthanc", async () => {
    const derivedId = await seriesIdOf(secondJob.outputSeriesUid!);
    const page = await browser.newPage();
    await page.goto(`${orthanc.url}/web-viewer/app/viewer.html?series=${derivedId}`);
    const canvas = page.locator("canvas").first();
    await canvas.waitFor({ timeout: 30_000 });
    // The image is drawn once the viewer has decoded a slice: wait for a canvas with more than one grey level.
    await expect.poll(() => page.evaluate(() => {
      const { document } = globalThis as unknown as PageGlobals;
      for (const c of Array.from(document.querySelectorAll("canvas"))) {
        const context = c.getContext("2d");
        if (!context || c.width === 0 || c.height === 0) continue;
        const { data } = context.getImageData(0, 0, c.width, c.height);
        const levels = new Set<number>();
        for (let i = 0; i < data.length; i += 4 * 97) levels.add(data[i]!);
        if (levels.size > 16) return true;
      }
      return false;
    }), { timeout: 60_000 }).toBe(true);
    await page.screenshot({ path: path.join(ARTIFACTS, "webviewer-derived-series.png") });
    await page.close();
  }, 120_000);
});
