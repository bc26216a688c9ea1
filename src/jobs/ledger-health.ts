/**
 * Whether the ledger can be written. A write that fails because of the disk (SQLITE_READONLY: the file or its
 * folder read-only, the volume remounted read-only; SQLITE_FULL: the disk or quota full; SQLITE_IOERR: the disk
 * failing) makes the ledger "not writable": /health and /ready say so with the file and the error, the change feed
 * stops (its cursor does not move, so the changes it could not record are read again) and no job starts. While it
 * lasts, each look probes with one real write (the cursor rewritten to itself) at most once a second; the first
 * that succeeds ends it, except after a full disk: there the probe's one page can land in the room the failed, larger
 * write had taken in the WAL file while the next real write fails again (seen on a full tmpfs: ready and not ready
 * every second), so the disk must also show MIN_FREE_AFTER_FULL free.
 */
import { statfsSync } from "node:fs";
import path from "node:path";
import type Database from "better-sqlite3";
import { logger } from "../log.js";

const log = logger("ledger");

/** The SQLite result codes (extended ones start with these) that mean the disk refused a write. */
const WRITE_FAILURE = /^SQLITE_(READONLY|FULL|IOERR|CANTOPEN)/;

/**
 * Free space a full disk must show again before the ledger counts as writable: twice the WAL's size at its automatic
 * checkpoint (SQLite's default, 1000 pages of 4 KiB), so the feed's and the queue's next writes fit.
 */
export const MIN_FREE_AFTER_FULL = 8 * 2 ** 20;

export interface LedgerFault {
  /** The ledger file. */
  path: string;
  /** SQLite's code, e.g. SQLITE_READONLY or SQLITE_FULL. */
  code: string;
  message: string;
  since: string;
  /** What an operator can do about it. */
  action: string;
}

export function isLedgerWriteFailure(error: unknown): error is Error & { code: string } {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && WRITE_FAILURE.test(code);
}

function actionFor(code: string, file: string): string {
  if (code.startsWith("SQLITE_FULL")) return `free space on the disk that holds ${file} (CT_ENHANCE_DATA_DIR); the node resumes by itself once ${MIN_FREE_AFTER_FULL / 2 ** 20} MiB are free`;
  if (code.startsWith("SQLITE_IOERR")) return `check the disk that holds ${file} (I/O error: failing or remounted?); the node resumes once writes succeed`;
  return `make ${file}, its -wal/-shm files and its folder writable by the service's user (or remount the disk read-write); the node resumes by itself`;
}

export class LedgerHealth {
  private current: LedgerFault | undefined;
  private lastProbe = 0;

  constructor(
    private readonly db: Database.Database,
    private readonly file: string,
    private readonly probeEveryMs = 1000,
  ) {}

  /** The fault while the ledger cannot be written; undefined when it can. */
  fault(): LedgerFault | undefined {
    return this.current;
  }

  /**
   * Notes an error thrown by a ledger write: a disk failure becomes the ledger's fault (true); anything else is not
   * the ledger's business (false).
   */
  noteError(error: unknown): boolean {
    if (!isLedgerWriteFailure(error)) return false;
    if (!this.current) {
      this.current = { path: this.file, code: error.code, message: error.message, since: new Date().toISOString(), action: actionFor(error.code, this.file) };
      this.lastProbe = Date.now();
      const { message, ...fault } = this.current;
      // SQLite's message goes under `error`: a field named `message` would replace the line's own.
      log.error("the ledger cannot be written: the change feed and the job queue wait until it can", { ...fault, error: message });
    }
    return true;
  }

  /** True when writes can be made; while faulted, probes with one real write at most once per probeEveryMs. */
  writable(): boolean {
    if (!this.current) return true;
    if (Date.now() - this.lastProbe < this.probeEveryMs) return false;
    this.lastProbe = Date.now();
    if (this.current.code.startsWith("SQLITE_FULL") && freeBytes(path.dirname(this.file)) < MIN_FREE_AFTER_FULL) return false;
    try {
      this.db.prepare("INSERT INTO feed_cursor (id, seq) VALUES (1, 0) ON CONFLICT(id) DO UPDATE SET seq = seq").run();
    } catch (error) {
      if (isLedgerWriteFailure(error)) return false;
      throw error;
    }
    log.info("the ledger can be written again; resuming", { path: this.file, faultSince: this.current.since });
    this.current = undefined;
    return true;
  }
}

/** Bytes an unprivileged writer may still use on the disk that holds `folder`; Infinity when it cannot be asked. */
function freeBytes(folder: string): number {
  try {
    const disk = statfsSync(folder);
    return disk.bavail * disk.bsize;
  } catch {
    return Number.POSITIVE_INFINITY; // the probe write alone decides
  }
}
