/**
 * The largest float32 volume a job may build, checked before anything is fetched or allocated: from Orthanc's
 * instance count and the first instance's matrix (its Rows and Columns). A series over it (a 2000-slice stack on a
 * small node) is refused for good, naming its size, the limit and the setting, instead of the process being killed
 * for memory halfway through: the whole job peaks at about 2.6x its volume (README, "Speed and memory").
 */
import { Stage, StageError } from "../../stage-error.js";

export const MAX_VOLUME_SETTING = "limits.maxVolumeMiB (env CT_ENHANCE_MAX_VOLUME_MB)";

export interface SeriesSize {
  /** Orthanc's instance count. */
  instances: number;
  rows: number;
  columns: number;
}

/** The float32 volume's size of a series, MiB. */
export const volumeMiB = (size: SeriesSize): number => (size.instances * size.rows * size.columns * 4) / 2 ** 20;

/** Throws a StageError (volume, not retryable) when the series' volume is over the limit. */
export function checkVolumeSize(size: SeriesSize, maxVolumeMiB: number): void {
  const mib = volumeMiB(size);
  if (mib <= maxVolumeMiB) return;
  throw new StageError(Stage.Volume,
    `the series is too large for this node: ${size.instances} instances of ${size.rows}x${size.columns} make a ` +
      `${Math.ceil(mib)} MiB float32 volume, over the limit of ${maxVolumeMiB} MiB (${MAX_VOLUME_SETTING}); ` +
      "raise the limit on a node with more memory (a job peaks at about 2.6x its volume), or send a thinner series",
    false);
}

/** Rows and Columns from Orthanc's simplified tags, when both are there. */
export function matrixOf(tags: Record<string, unknown>): { rows: number; columns: number } | undefined {
  const rows = Number(tags.Rows);
  const columns = Number(tags.Columns);
  return Number.isInteger(rows) && Number.isInteger(columns) && rows > 0 && columns > 0 ? { rows, columns } : undefined;
}
