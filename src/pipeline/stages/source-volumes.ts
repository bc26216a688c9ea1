/**
 * The seam between the fetch stage and whoever holds volumes between jobs (the job queue: src/service/held-volumes.ts).
 * Two pipelines that select one series make two jobs; the second should not fetch and assemble the series again, and
 * the next job's fetch should run while this job's model does. A held volume is keyed by the series as Orthanc holds
 * it now (its instances and last update), so a series that changed since, more instances or others, is fetched anew.
 */
import type { CtVolume } from "../../dicom/ct-volume.js";
import type { Job } from "../../jobs/job-records.js";

/** The series as Orthanc holds it, as far as a held volume must match it. */
export function seriesStateKey(orthancSeriesId: string, series: { Instances: readonly string[]; LastUpdate?: string }): string {
  return `${orthancSeriesId}|${series.LastUpdate ?? ""}|${series.Instances.length}|${[...series.Instances].sort().join(",")}`;
}

/** A volume assembled before the job asked, and how: by the job before (reused) or ahead of this one (prefetched). */
export interface HeldVolume {
  volume: CtVolume;
  how: "reused" | "prefetched";
  /** The job that fetched it. */
  fetchedFor: number;
}

export interface SourceVolumes {
  /** The volume held for this series state, now the job's; undefined (and anything else held let go) otherwise. */
  take(key: string, job: Job): HeldVolume | undefined;
  /** The job fetched this volume itself: held for the next job of the same series. */
  keep(key: string, volume: CtVolume, job: Job): void;
  /** The job's plan writes over its input (a detector's map): this volume must not be handed to another job. */
  forget(volume: CtVolume): void;
  /** The job's model is running: the time to fetch the next job's volume. */
  inferring(job: Job, volume: CtVolume): void;
}
