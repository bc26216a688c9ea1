/**
 * Reconcile: what Orthanc holds against what the ledger saw. A series the change feed never reported (the service
 * was down while Orthanc received it and the change log was cleared or rotated, or an event was missed) and a series
 * that changed after we decided on it (new instances arrived) go back to the series watcher, which waits for them
 * to be stable and runs the selection rules — so a job is queued for every one the rules select.
 */
import { logger } from "../log.js";
import type { OrthancClient } from "../orthanc/rest.js";
import { WatchState } from "../jobs/feed-records.js";
import type { Ledger } from "../jobs/ledger.js";
import { parseOrthancTime } from "../pipeline/series-watcher.js";

const log = logger("reconcile");

export interface ReconcileSummary {
  /** Series Orthanc holds now. */
  seriesInOrthanc: number;
  /** Series the ledger had never seen: handed to the watcher. */
  unseen: string[];
  /** Series decided before, with instances received since: handed to the watcher again. */
  changed: string[];
}


const PAGE = 500;

/** One pass over Orthanc's series (paged, expanded: one request per 500 series). */
export async function reconcileSeries(orthanc: OrthancClient, ledger: Ledger): Promise<ReconcileSummary> {
  const known = new Map(ledger.feed.watchedSeriesRecords().map((record) => [record.orthancId, record]));
  const summary: ReconcileSummary = { seriesInOrthanc: 0, unseen: [], changed: [] };
  for (let since = 0; ; since += PAGE) {
    const page = await orthanc.seriesPage(since, PAGE);
    for (const series of page) {
      summary.seriesInOrthanc += 1;
      const record = known.get(series.ID);
      if (!record || record.state === WatchState.Gone) {
        ledger.feed.setWatchState(series.ID, WatchState.AwaitingStable);
        summary.unseen.push(series.ID);
        continue;
      }
      if (record.state !== WatchState.Decided) continue; // the watcher has it in hand
      const lastUpdate = parseOrthancTime(series.LastUpdate);
      if (lastUpdate && lastUpdate.getTime() > Date.parse(record.updatedAt) + 1000) {
        ledger.feed.setWatchState(series.ID, WatchState.AwaitingStable);
        summary.changed.push(series.ID);
      }
    }
    if (page.length < PAGE) break;
  }
  if (summary.unseen.length + summary.changed.length > 0) {
    log.info("series handed to the watcher", { unseen: summary.unseen, changed: summary.changed });
  }
  return summary;
}
