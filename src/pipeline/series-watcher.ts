/**
 * Between the change feed and the job queue: series seen through NewSeries wait here until they are stable (Orthanc
 * says IsStable, or no instance arrived for stableAgeSeconds — Orthanc forgets unstable series when it restarts, so
 * its StableSeries event may never come); stable series go through selection once.
 */
import { WatchState } from "../jobs/feed-records.js";
import type { Ledger } from "../jobs/ledger.js";
import { logger } from "../log.js";
import type { OrthancClient } from "../orthanc/rest.js";
import { selectSeries } from "./select-series.js";
import type { ModelRegistry } from "../models/registry.js";
import type { LaneRules } from "./lane-rules.js";
import type { PipelineDefinition } from "./pipelines.js";

const log = logger("series-watcher");

/** Orthanc's LastUpdate (local time, e.g. 20261123T232822) as a Date. */
export function parseOrthancTime(text: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})/.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  return new Date(y, mo - 1, d, h, mi, s);
}

export interface WatcherDeps {
  orthanc: OrthancClient;
  ledger: Ledger;
  models: ModelRegistry;
  pipelines: PipelineDefinition[];
  /** The site's urgent rule (the pipelines file's `lanes`). */
  laneRules?: LaneRules;
  stableAgeSeconds: number;
}

/** One pass: promote series that became stable, then run selection on every stable one. Returns jobs queued. */
export async function watchSeriesOnce(deps: WatcherDeps, at: Date = new Date()): Promise<number> {
  const { orthanc, ledger } = deps;
  for (const id of ledger.feed.watchedSeries(WatchState.AwaitingStable)) {
    const series = await orthanc.series(id);
    if (!series) {
      ledger.feed.setWatchState(id, WatchState.Gone);
      continue;
    }
    const lastUpdate = parseOrthancTime(series.LastUpdate);
    const quietFor = lastUpdate ? (at.getTime() - lastUpdate.getTime()) / 1000 : 0;
    if (series.IsStable || quietFor >= deps.stableAgeSeconds) ledger.feed.setWatchState(id, WatchState.Stable);
  }
  let queued = 0;
  for (const id of ledger.feed.watchedSeries(WatchState.Stable)) {
    try {
      const outcome = await selectSeries(id, deps);
      queued += outcome.queued;
      ledger.feed.setWatchState(id, outcome.exists ? WatchState.Decided : WatchState.Gone);
    } catch (error) {
      // Stays 'stable': selection is tried again on the next pass.
      log.warn("selection failed; will try again", { series: id, error: (error as Error).message });
    }
  }
  return queued;
}
