/**
 * OHIF on our outputs (issue 16), as a reader opens it from ct-enhance's link: a real Orthanc whose Python plugin
 * serves the prepared OHIF (@ohif/app's dist, src/tools/ohif-prepare.ts) at /ohif/ under Orthanc's login, the built
 * service deriving a Syn-CTA series from 24 real slices by itself, and Debian's Chromium driven by playwright-core.
 *
 * The findings are stored directly (not by the detector: whether the 24 slices hold a nodule it finds is not this
 * test's question): one nodule written by our own SR TID 1500 and SEG writers on the source volume's geometry.
 *
 * It checks what a reader sees: the source and the derived series side by side (our hanging protocol), the slice
 * each viewport shows (cornerstone's own index and the position OHIF's overlay prints) moving together when one is
 * scrolled with the mouse wheel, the nodule in the measurements panel with its long axis, and the SEG loaded as an
 * overlay on the source. Screenshots go to .test-output/ (git-ignored).
 */
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { CHROMIUM, launchChromium, type TestBrowser } from "../helpers/chromium.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assembleVolume } from "../../src/dicom/volume.js";
import type { CtVolume, Vector3 } from "../../src/dicom/ct-volume.js";
import type { Finding } from "../../src/dicom/finding.js";
import { writeFindingsInstances } from "../../src/dicom/findings-instances.js";
import { longAxis } from "../../src/dicom/long-axis.js";
import { LUNG, NODULE } from "../../src/dicom/sr/codes.js";
import { deterministicUid } from "../../src/dicom/uid.js";
import { ohifStudyUrl } from "../../src/orthanc/ohif-link.js";
import { prepareOhif } from "../../src/tools/ohif-prepare.js";
import { requireCtData } from "../helpers/ct-data.js";
import { contiguousSubset, type SeriesSubset } from "../helpers/ct-subset.js";
import { OPERATOR_TEST_PIPELINES, startService, waitFor, type TestService } from "../helpers/ct-service.js";
import { freePort, REPO_ROOT, startOrthanc, type TestOrthanc } from "../helpers/orthanc.js";
import { ALGORITHM, CONTENT_DATE } from "../helpers/sr-fixtures.js";
import { requireOrthanc, requireTools } from "../helpers/system-tools.js";

const ready = requireCtData("lidc-idri-0002-ncct") && requireOrthanc() && requireTools(CHROMIUM);
const ARTIFACTS = path.join(REPO_ROOT, ".test-output");
const SLICES = 24;
const SOURCE_VIEWPORT = "ct-enhance-source";
const DERIVED_VIEWPORT = "ct-enhance-derived";

interface Job { id: number; state: string; outputSeriesUid: string | null; errorMessage: string | null }

/** One viewport as the page reports it: which series, which slice, where on screen. */
interface ViewportState {
  seriesInstanceUID: string;
  imageIndex: number;
  imageCount: number;
  box: { x: number; y: number; width: number; height: number };
  overlayText: string;
}

/** One nodule (a disk of radius 5 pixels at its largest) on three middle slices, in the right lung (row 220, column 150). */
function oneNodule(volume: CtVolume): Finding {
  const [rowSpacing, columnSpacing] = volume.pixelSpacing;
  const middle = Math.floor(volume.slices / 2);
  const disk = (centreRow: number, centreColumn: number, radius: number): number[] => {
    const pixels: number[] = [];
    for (let r = centreRow - radius; r <= centreRow + radius; r++) {
      for (let c = centreColumn - radius; c <= centreColumn + radius; c++) {
        if ((r - centreRow) ** 2 + (c - centreColumn) ** 2 <= radius * radius) pixels.push(r * volume.columns + c);
      }
    }
    return pixels;
  };
  const mask = [
    { slice: middle - 1, pixels: disk(220, 150, 3) },
    { slice: middle, pixels: disk(220, 150, 5) },
    { slice: middle + 1, pixels: disk(220, 150, 3) },
  ];
  const o = volume.imagePositionPatient[middle]!;
  const iop = volume.imageOrientationPatient;
  const centroid: Vector3 = [0, 1, 2].map((a) => o[a]! + 150 * columnSpacing * iop[a]! + 220 * rowSpacing * iop[a + 3]!) as Vector3;
  return {
    trackingId: "Nodule 1",
    trackingUid: deterministicUid("ohif-test", "tracking", 1),
    findingCode: NODULE,
    findingSiteCode: LUNG,
    centroidPatientMm: centroid,
    mask,
    longestDiameterMm: longAxis(mask, volume).lengthMm, // as the detector measures it; the SR measures the same
    volumeMm3: 98.2,
    probability: 0.87,
  };
}

/** The patient position of a pixel's centre on one slice of the volume (LPS, mm). */
function voxelCentre(volume: CtVolume, slice: number, row: number, column: number): number[] {
  const [rowSpacing, columnSpacing] = volume.pixelSpacing;
  const o = volume.imagePositionPatient[slice]!;
  const iop = volume.imageOrientationPatient;
  return [0, 1, 2].map((a) => o[a]! + column * columnSpacing * iop[a]! + row * rowSpacing * iop[a + 3]!);
}

/** What the page reads from OHIF (window.services, set by OHIF's cornerstone extension) and the DOM. */
function readViewports(page: Page, ids: string[]): Promise<ViewportState[]> {
  return page.evaluate((viewportIds) => {
    type Viewport = {
      element: { getBoundingClientRect(): { x: number; y: number; width: number; height: number } };
      getCurrentImageIdIndex(): number;
      getImageIds(): string[];
      getCurrentImageId(): string;
    };
    const w = globalThis as unknown as {
      services: { cornerstoneViewportService: { getCornerstoneViewport(id: string): Viewport | undefined } };
      cornerstone?: unknown;
    };
    return viewportIds.map((id) => {
      const viewport = w.services.cornerstoneViewportService.getCornerstoneViewport(id);
      if (!viewport) throw new Error(`no viewport ${id}`);
      const imageId = viewport.getCurrentImageId();
      const series = /\/series\/([0-9.]+)\//.exec(imageId)?.[1] ?? "";
      const r = viewport.element.getBoundingClientRect();
      const pane = (viewport.element as unknown as { closest(s: string): { innerText: string } | null }).closest("[data-cy='viewport-pane']")
        ?? (viewport.element as unknown as { parentElement: { parentElement: { innerText: string } } }).parentElement.parentElement;
      return {
        seriesInstanceUID: series,
        imageIndex: viewport.getCurrentImageIdIndex(),
        imageCount: viewport.getImageIds().length,
        box: { x: r.x, y: r.y, width: r.width, height: r.height },
        overlayText: pane?.innerText ?? "",
      };
    });
  }, ids);
}

describe.runIf(ready)("OHIF on a processed study (real Orthanc + plugin + service, Chromium)", () => {
  let orthanc: TestOrthanc;
  let service: TestService;
  let subset: SeriesSubset;
  let browser: BrowserContext;
  let chrome: TestBrowser | undefined;
  let job: Job;
  let volume: CtVolume;
  let studyInstanceUID: string;
  let nodule: Finding;
  const token = `ohif-${Math.random().toString(36).slice(2)}`;
  const consoleLines: string[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const ohifDir = prepareOhif();
    subset = contiguousSubset("lidc-idri-0002-ncct", SLICES);
    const port = await freePort();
    orthanc = await startOrthanc({ stableAgeSeconds: 2, ctEnhanceApiUrl: `http://127.0.0.1:${port}`, ctEnhanceApiToken: token, ohifDir });
    service = await startService(orthanc, { CT_ENHANCE_PORT: String(port), CT_ENHANCE_API_TOKEN: token, ...OPERATOR_TEST_PIPELINES });
    const [sourceId] = (await orthanc.uploadFolder(subset.folder)) as [string];
    job = await waitFor("the Syn-CTA job (by itself, from the feed)", async () => {
      const found = (await service.api<Job[]>(`/jobs?orthancSeries=${sourceId}`))[0];
      if (found?.state === "failed") throw new Error(`job failed: ${found.errorMessage}`);
      return found?.state === "done" ? found : undefined;
    }, 180_000, service);

    volume = await assembleVolume(subset.files.map((file) => new Uint8Array(readFileSync(file))));
    studyInstanceUID = volume.studyInstanceUID;
    nodule = oneNodule(volume);
    const instances = writeFindingsInstances({
      volume,
      findings: [nodule],
      algorithm: ALGORITHM,
      sr: { seriesInstanceUID: deterministicUid("ohif-test", "sr"), sopInstanceUID: deterministicUid("ohif-test", "sr", 1), seriesNumber: 9001, contentDate: CONTENT_DATE },
      seg: { seriesInstanceUID: deterministicUid("ohif-test", "seg"), sopInstanceUID: deterministicUid("ohif-test", "seg", 1), seriesNumber: 9002, contentDate: CONTENT_DATE },
      searchedFor: NODULE,
      searchedSite: LUNG,
    });
    for (const bytes of instances) {
      const response = await fetch(`${orthanc.url}/instances`, { method: "POST", headers: { Authorization: orthanc.authorization }, body: bytes });
      expect(response.ok).toBe(true);
    }

    // OHIF renders with WebGL: SwiftShader (software) stands in for the GPU this machine lacks.
    chrome = await launchChromium({ username: orthanc.username, password: orthanc.password }, { width: 1600, height: 900 }, ["--use-angle=swiftshader", "--enable-unsafe-swiftshader"]);
    browser = chrome.context;
  }, 300_000);

  afterAll(async () => {
    await chrome?.close();
    await service?.stop();
    service?.remove();
    await orthanc?.stop();
    subset?.remove();
  });

  it("opens the processed study with the source and the Syn-CTA side by side, scrolling together", async () => {
    const page = await browser.newPage();
    page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
    await page.goto(ohifStudyUrl(orthanc.url, studyInstanceUID));
    try {
      await expect.poll(async () => {
        try {
          const states = await readViewports(page, [SOURCE_VIEWPORT, DERIVED_VIEWPORT]);
          return states.every((s) => s.imageCount === SLICES);
        } catch {
          return false;
        }
      }, { timeout: 120_000, interval: 1000 }).toBe(true);
    } finally {
      await page.screenshot({ path: path.join(ARTIFACTS, "ohif-opened.png") });
      console.log(consoleLines.filter((l) => /error|warn/i.test(l)).slice(0, 40).join("\n"));
    }
    const before = await readViewports(page, [SOURCE_VIEWPORT, DERIVED_VIEWPORT]);
    console.log(JSON.stringify(before, null, 1));
    expect(before[0]!.seriesInstanceUID).toBe(volume.seriesInstanceUID);
    expect(before[1]!.seriesInstanceUID).toBe(job.outputSeriesUid);
    expect(before[0]!.box.x + before[0]!.box.width).toBeLessThanOrEqual(before[1]!.box.x + 1); // left | right

    const right = before[1]!.box;
    await page.mouse.move(right.x + right.width / 2, right.y + right.height / 2);
    for (let i = 0; i < 5; i++) {
      await page.mouse.wheel(0, 100);
      await page.waitForTimeout(150);
    }
    await expect.poll(async () => (await readViewports(page, [DERIVED_VIEWPORT]))[0]!.imageIndex, { timeout: 10_000 })
      .not.toBe(before[1]!.imageIndex);
    await page.waitForTimeout(1000);
    const after = await readViewports(page, [SOURCE_VIEWPORT, DERIVED_VIEWPORT]);
    console.log(JSON.stringify(after, null, 1));
    await page.screenshot({ path: path.join(ARTIFACTS, "ohif-scrolled.png") });
    const moved = after[1]!.imageIndex - before[1]!.imageIndex;
    expect(Math.abs(moved)).toBeGreaterThan(0);
    expect(after[0]!.imageIndex - before[0]!.imageIndex).toBe(moved);
    // What the reader sees agrees: OHIF's overlay in each viewport prints the same slice, "(n/24)".
    for (const state of after) expect(state.overlayText).toContain(`(${state.imageIndex + 1}/${SLICES})`);
    await page.close();
  }, 240_000);

  it("opens the SR over the source and lists the nodule with its long axis; loads the SEG as an overlay on the source", async () => {
    const page = await browser.newPage();
    page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    await page.goto(ohifStudyUrl(orthanc.url, studyInstanceUID));
    await expect.poll(async () => {
      try {
        return (await readViewports(page, [SOURCE_VIEWPORT, DERIVED_VIEWPORT])).every((s) => s.imageCount === SLICES);
      } catch {
        return false;
      }
    }, { timeout: 120_000, interval: 1000 }).toBe(true);
    const bodyText = () => page.evaluate(() => (globalThis as unknown as { document: { body: { innerText: string } } }).document.body.innerText);
    type Services = {
      services: {
        segmentationService: { getSegmentations(): { segmentationId: string; label?: string }[] };
        measurementService: {
          getMeasurements(): { label?: string; displayText?: unknown; toolName?: string; referenceSeriesUID?: string; SOPInstanceUID?: string; data?: unknown }[];
        };
        viewportGridService: { getState(): { activeViewportId: string; viewports: Map<string, { displaySetInstanceUIDs: string[] }> } };
        displaySetService: { getDisplaySetByUID(uid: string): { SeriesInstanceUID: string; Modality: string } | undefined };
      };
    };
    const grid = () => page.evaluate(() => {
      const { viewportGridService, displaySetService } = (globalThis as unknown as Services).services;
      const state = viewportGridService.getState();
      return {
        active: state.activeViewportId,
        viewports: [...state.viewports.entries()].map(([id, v]) => ({
          id,
          series: v.displaySetInstanceUIDs.map((uid) => {
            const ds = displaySetService.getDisplaySetByUID(uid);
            return ds ? `${ds.Modality} ${ds.SeriesInstanceUID}` : uid;
          }),
        })),
      };
    });

    // The SR: opened from its thumbnail into the active viewport (the source's, on the left), tracked when OHIF asks.
    const axis = longAxis(nodule.mask, volume);
    const axisImage = volume.sourceSlices[axis.slice]!.sopInstanceUID;
    expect((await grid()).active).toBe(SOURCE_VIEWPORT);
    await page.getByText("SR", { exact: true }).first().dblclick();
    await page.getByRole("button", { name: "Yes" }).click({ timeout: 30_000 });
    const measurements = await waitFor("the SR's measurements in OHIF", async () => {
      const found = await page.evaluate(() => (globalThis as unknown as Services).services.measurementService.getMeasurements()
        .map((m) => ({ label: m.label, toolName: m.toolName, displayText: m.displayText as { primary?: string[] }, series: m.referenceSeriesUID, sop: m.SOPInstanceUID })));
      return found.length > 0 ? found : undefined;
    }, 60_000);
    console.log(JSON.stringify(measurements));
    // One measurement, the nodule's long axis, as a length on the source image the SR drew it on.
    expect(measurements).toHaveLength(1);
    expect(measurements[0]).toMatchObject({ toolName: "Length", label: nodule.trackingId, series: volume.seriesInstanceUID, sop: axisImage });

    // Where OHIF shows it: the source viewport (left) holds the source series again, at the nodule's image; the
    // derived series stays on the right, at the same slice (they scroll together).
    await expect.poll(async () => {
      const [source] = await readViewports(page, [SOURCE_VIEWPORT]);
      return source!.seriesInstanceUID;
    }, { timeout: 20_000 }).toBe(volume.seriesInstanceUID);
    const currentImages = await page.evaluate((ids) => ids.map((id) =>
      (globalThis as unknown as { services: { cornerstoneViewportService: { getCornerstoneViewport(id: string): { getCurrentImageId(): string } } } })
        .services.cornerstoneViewportService.getCornerstoneViewport(id).getCurrentImageId()), [SOURCE_VIEWPORT, DERIVED_VIEWPORT]);
    console.log("after tracking", JSON.stringify(await grid()), currentImages);
    expect(currentImages[0]).toContain(`/instances/${axisImage}/`);
    const [sourceState, derivedState] = await readViewports(page, [SOURCE_VIEWPORT, DERIVED_VIEWPORT]);
    expect(derivedState!.seriesInstanceUID).toBe(job.outputSeriesUid);
    expect(derivedState!.imageIndex).toBe(sourceState!.imageIndex);

    // The measurement panel, opened from its tab on the right: the nodule by name with its long axis, as the SR gives it.
    await page.locator("[data-cy='trackedMeasurements-btn']").first().click();
    const row = page.locator("[data-cy='measurement-table-row-0']");
    await row.waitFor({ timeout: 20_000 });
    const rowText = await row.innerText();
    const panelText = await page.locator("[data-cy='trackedMeasurements-panel']").first().innerText();
    console.log(`panel row: ${JSON.stringify(rowText)}\npanel: ${JSON.stringify(panelText.slice(0, 600))}`);
    expect(rowText).toContain(nodule.trackingId);
    const shown = /([0-9]+(?:\.[0-9]+)?) mm/.exec(rowText);
    expect(shown, rowText).not.toBeNull();
    // OHIF prints two decimals; the SR's NUM is the axis' length (formatDS keeps up to 16 characters).
    expect(Math.abs(Number(shown![1]) - axis.lengthMm)).toBeLessThanOrEqual(0.005 + 1e-9);
    await page.screenshot({ path: path.join(ARTIFACTS, "ohif-sr-measurements.png") });

    // A close look at the line on the slice: the source viewport's camera on the axis' middle, four times closer.
    const ends = axis.ends.map((end) => voxelCentre(volume, axis.slice, end.row, end.column));
    const canvasEnds = await page.evaluate(({ id, ends }) => {
      type Camera = { focalPoint: number[]; position: number[]; parallelScale: number };
      const viewport = (globalThis as unknown as { services: { cornerstoneViewportService: { getCornerstoneViewport(id: string): {
        getCamera(): Camera; setCamera(c: Partial<Camera>): void; render(): void; worldToCanvas(p: number[]): number[];
      } } } }).services.cornerstoneViewportService.getCornerstoneViewport(id);
      const camera = viewport.getCamera();
      const middle = [0, 1, 2].map((a) => (ends[0]![a]! + ends[1]![a]!) / 2);
      const offset = [0, 1, 2].map((a) => camera.position[a]! - camera.focalPoint[a]!);
      viewport.setCamera({ focalPoint: middle, position: middle.map((v, a) => v + offset[a]!), parallelScale: camera.parallelScale / 4 });
      viewport.render();
      return ends.map((p) => viewport.worldToCanvas(p));
    }, { id: SOURCE_VIEWPORT, ends });
    await page.waitForTimeout(1500);
    const box = (await readViewports(page, [SOURCE_VIEWPORT]))[0]!.box;
    console.log("axis ends on the canvas", JSON.stringify(canvasEnds), JSON.stringify(box));
    for (const [x, y] of canvasEnds) {
      expect(x).toBeGreaterThan(0);
      expect(x).toBeLessThan(box.width);
      expect(y).toBeGreaterThan(0);
      expect(y).toBeLessThan(box.height);
    }
    await page.screenshot({ path: path.join(ARTIFACTS, "ohif-sr-long-axis.png"), clip: box });

    // The SEG: opened from its thumbnail, loaded when OHIF asks.
    await page.getByText("SEG", { exact: true }).first().dblclick();
    await page.getByRole("button", { name: "Yes" }).click({ timeout: 30_000 });
    const segmentations = await waitFor("the SEG loaded as a segmentation", async () => {
      const found = await page.evaluate(() => (globalThis as unknown as Services).services.segmentationService.getSegmentations()
        .map((g) => ({ id: g.segmentationId, label: g.label })));
      return found.length > 0 ? found : undefined;
    }, 60_000);
    await page.waitForTimeout(3000);
    await page.screenshot({ path: path.join(ARTIFACTS, "ohif-seg-overlay.png") });
    console.log(JSON.stringify(segmentations), "\n", (await bodyText()).slice(0, 2500));
    expect(segmentations).toHaveLength(1);
    expect(segmentations[0]!.label ?? "").toMatch(/AI-generated findings/);
    await page.close();
  }, 240_000);
});
