/**
 * Follows Orthanc's /changes with a durable cursor. Series events are recorded together with the new
 * cursor (one transaction per page), so a restart resumes exactly where it stopped. A stored cursor above Orthanc's
 * last change means Orthanc's database was reset: the feed starts again from 0 (jobs are keyed by UID, so nothing
 * already done is done twice). After a reset, and whenever Orthanc answers again after the feed could not read it
 * (it may have restarted on a new database whose log has already grown past the cursor, where the comparison above
 * cannot see the reset), `onResync` asks for a reconcile of Orthanc's series against the ledger.
 */
import { logger } from "../log.js";
import type { OrthancClient } from "./rest.js";

const log = logger("change-feed");

/** Where the feed keeps its place: the cursor, and the series events recorded together with it. */
export interface FeedCursorStore {
  cursor(): number;
  setCursor(seq: number): void;
  /** Records the series events of one page and the page's last sequence number, all or nothing. */
  recordChanges(series: { orthancId: string; stable: boolean }[], cursor: number): void;
}

/** The ledger's write health (ledger-health.ts): while it cannot be written the feed reads nothing. */
export interface WriteGate {
  writable(): boolean;
  /** True when the error was the ledger's disk refusing a write (then the feed waits for writable()). */
  noteError(error: unknown): boolean;
}

export interface ChangeFeedOptions {
  pollIntervalMs: number;
  pageSize: number;
  /** Called after a page with series events was recorded. */
  onSeriesRecorded?: () => void;
  /** Called when the feed's view of Orthanc may have missed changes (a database reset, Orthanc back after an outage). */
  onResync?: (why: string) => void;
  /** While the ledger cannot be written, the feed does not read (its cursor stays, so nothing is skipped). */
  writeGate?: WriteGate;
}

export class ChangeFeed {
  private running = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly orthanc: OrthancClient,
    private readonly store: FeedCursorStore,
    private readonly options: ChangeFeedOptions,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.follow();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  /** Reads every page available now; returns true when caught up. Exposed for tests and the `run` command. */
  async readAvailable(): Promise<void> {
    await this.detectDatabaseReset();
    for (;;) {
      const page = await this.orthanc.changes(this.store.cursor(), this.options.pageSize);
      const series = page.Changes
        .filter((c) => c.ResourceType === "Series" && (c.ChangeType === "NewSeries" || c.ChangeType === "StableSeries"))
        .map((c) => ({ orthancId: c.ID, stable: c.ChangeType === "StableSeries" }));
      this.store.recordChanges(series, page.Last);
      if (series.length > 0) {
        log.debug("series events recorded", { count: series.length, cursor: page.Last });
        this.options.onSeriesRecorded?.();
      }
      if (page.Done || page.Changes.length === 0) return;
    }
  }

  private async detectDatabaseReset(): Promise<void> {
    const last = await this.orthanc.lastChange();
    const cursor = this.store.cursor();
    if (cursor > last) {
      log.warn("stored cursor is ahead of Orthanc's last change: Orthanc's database was reset; following from 0", {
        cursor,
        orthancLast: last,
      });
      this.store.setCursor(0);
      this.options.onResync?.("Orthanc's database was reset");
    }
  }

  private async follow(): Promise<void> {
    let failures = 0;
    while (this.running) {
      const gate = this.options.writeGate;
      if (gate && !gate.writable()) {
        await this.sleep(this.options.pollIntervalMs);
        continue;
      }
      try {
        await this.readAvailable();
        if (failures > 0) {
          log.info("Orthanc reachable again; change feed resumed; reconciling in case it restarted", { cursor: this.store.cursor() });
          this.options.onResync?.("Orthanc reachable again after the change feed could not read it");
        }
        failures = 0;
      } catch (error) {
        if (gate?.noteError(error)) continue; // the ledger's disk, not Orthanc: wait until it can be written
        failures += 1;
        // Log the first failure and then every 30th, so a long Orthanc outage does not flood the log.
        if (failures === 1 || failures % 30 === 0) {
          log.warn("cannot read Orthanc's change feed; will keep trying", { error: (error as Error).message, failures });
        }
      }
      await this.sleep(this.options.pollIntervalMs * Math.min(1 + failures, 10));
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
