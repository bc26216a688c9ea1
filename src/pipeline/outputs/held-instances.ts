/**
 * The encoded instances of a derived series while its output checks are pending: appended to a file of the job's own
 * in the spool folder (`<dataDir>/spool`) as they are encoded, and read back one at a time as the store takes them.
 * Held in memory they would add half a float volume to the job's peak (a 261-slice series: 137 MiB, which took the
 * peak RSS past 3x the volume); on disk they cost a sequential write that runs while the model does. The file is
 * removed when the series is stored or rejected, and a service starting up removes what a dead process left.
 */
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import path from "node:path";
import { Stage, StageError } from "../../stage-error.js";

const SUFFIX = ".held";

export class HeldInstances {
  private readonly extents: { offset: number; length: number }[] = [];
  private end = 0;

  private constructor(private readonly file: string, private readonly handle: FileHandle) {}

  /** A new, empty file for the series' instances (one the same process left is overwritten). */
  static async open(spoolDir: string, seriesInstanceUID: string): Promise<HeldInstances> {
    const file = path.join(spoolDir, `${process.pid}-${seriesInstanceUID}${SUFFIX}`);
    try {
      mkdirSync(spoolDir, { recursive: true });
      return new HeldInstances(file, await open(file, "w+"));
    } catch (error) {
      throw spoolError(file, error);
    }
  }

  get count(): number {
    return this.extents.length;
  }

  async add(instance: Uint8Array): Promise<void> {
    try {
      await this.handle.write(instance, 0, instance.byteLength, this.end);
    } catch (error) {
      throw spoolError(this.file, error);
    }
    this.extents.push({ offset: this.end, length: instance.byteLength });
    this.end += instance.byteLength;
  }

  /** The instances in the order they were added, each read when asked for. */
  async *take(): AsyncGenerator<Uint8Array> {
    for (const { offset, length } of this.extents) {
      const instance = new Uint8Array(length);
      try {
        const { bytesRead } = await this.handle.read(instance, 0, length, offset);
        if (bytesRead !== length) throw new Error(`read ${bytesRead} of ${length} bytes at ${offset}`);
      } catch (error) {
        throw spoolError(this.file, error);
      }
      yield instance;
    }
  }

  /** Closes and removes the file; safe to call more than once. */
  async discard(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    rmSync(this.file, { force: true });
  }
}

/** Removes the files of processes no longer running (a crash, a kill): their jobs start again from the fetch. */
export function clearStaleSpool(spoolDir: string): number {
  let removed = 0;
  let names: string[];
  try {
    names = readdirSync(spoolDir);
  } catch {
    return 0; // no spool folder yet
  }
  for (const name of names.filter((n) => n.endsWith(SUFFIX))) {
    const pid = Number(name.slice(0, name.indexOf("-")));
    if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) continue;
    rmSync(path.join(spoolDir, name), { force: true });
    removed += 1;
  }
  return removed;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The spool folder failed (full disk, permissions): retried, since the next attempt may find room. */
function spoolError(file: string, error: unknown): StageError {
  const reason = error instanceof Error ? error.message : String(error);
  return new StageError(Stage.Write, `cannot hold the derived instances in ${file} until their checks pass: ${reason} ` +
    "(free space on the data folder's disk, or set CT_ENHANCE_DATA_DIR)", true, { cause: error });
}
