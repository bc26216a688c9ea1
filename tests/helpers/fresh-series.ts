/**
 * A small real series under new UIDs: `count` contiguous slices from the middle of a real series, re-encoded with a
 * new StudyInstanceUID, SeriesInstanceUID and SOPInstanceUIDs, so one Orthanc can hold several copies of the same
 * anatomy as distinct series (each its own job) and a test never meets a series an earlier test stored.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { edit, realSlices, testUid } from "./bad-input-corpus.js";
import type { CtSeriesName } from "./ct-data.js";
import { contiguousSubset } from "./ct-subset.js";

export interface FreshSeries {
  seriesInstanceUid: string;
  files: string[];
  remove(): void;
}

/** `header`: other attributes every instance gets (e.g. an AccessionNumber or SeriesDescription a rule reads). */
export function freshSeries(series: CtSeriesName, count: number, header: Record<string, string> = {}): FreshSeries {
  const subset = contiguousSubset(series, count);
  const folder = mkdtempSync(path.join(tmpdir(), `ct-enhance-fresh-${series}-`));
  const study = testUid();
  const seriesInstanceUid = testUid();
  try {
    const files = subset.files.map((file, index) => {
      const bytes = edit(new Uint8Array(readFileSync(file)), (dataset) => {
        Object.assign(dataset, header, { StudyInstanceUID: study, SeriesInstanceUID: seriesInstanceUid, SOPInstanceUID: testUid() });
      });
      const out = path.join(folder, `${String(index).padStart(4, "0")}.dcm`);
      writeFileSync(out, bytes);
      return out;
    });
    return { seriesInstanceUid, files, remove: () => rmSync(folder, { recursive: true, force: true }) };
  } finally {
    subset.remove();
  }
}

/**
 * `copies` fresh series of the same `count` slices, every `factor`-th row and column kept (bad-input-corpus.ts's
 * realSlices: the same anatomy in a smaller matrix, so many jobs stay quick on the CPU): each its own study and
 * series UIDs, for tests that need many distinct small series.
 */
export function freshSeriesCopies(series: CtSeriesName, count: number, copies: number, factor: number): FreshSeries[] {
  const sources = realSlices(series, count, factor).slices;
  return Array.from({ length: copies }, () => {
    const folder = mkdtempSync(path.join(tmpdir(), `ct-enhance-fresh-${series}-`));
    const study = testUid();
    const seriesInstanceUid = testUid();
    const files = sources.map((bytes, index) => {
      const out = path.join(folder, `${String(index).padStart(4, "0")}.dcm`);
      writeFileSync(out, edit(bytes, (header) => {
        Object.assign(header, { StudyInstanceUID: study, SeriesInstanceUID: seriesInstanceUid, SOPInstanceUID: testUid() });
      }));
      return out;
    });
    return { seriesInstanceUid, files, remove: () => rmSync(folder, { recursive: true, force: true }) };
  });
}
