/**
 * Whether Orthanc answers, as /health reports it: the last check's result, checked again in the background once it
 * is older than `maxAgeMs`. A health probe then costs no round trip to Orthanc (which may be busy serving a whole
 * series over WADO-RS) and measures this process alone; a change in Orthanc shows within about `maxAgeMs`.
 */
import type { OrthancClient } from "./rest.js";

export type OrthancStatus =
  | { reachable: true; version: string; checkedAt: Date }
  | { reachable: false; error: string; checkedAt: Date };

export class OrthancReachability {
  private last: OrthancStatus | undefined;
  private checking: Promise<OrthancStatus> | undefined;

  constructor(
    private readonly orthanc: Pick<OrthancClient, "system">,
    private readonly maxAgeMs = 5000,
    private readonly now: () => number = Date.now,
  ) {}

  /** The latest result; the very first call waits for its check, later ones never wait. */
  async status(): Promise<OrthancStatus> {
    if (!this.last) return this.check();
    if (this.now() - this.last.checkedAt.getTime() > this.maxAgeMs) void this.check();
    return this.last;
  }

  /** Asks Orthanc now (one request at a time, shared by concurrent callers) and keeps the answer. */
  check(): Promise<OrthancStatus> {
    this.checking ??= this.orthanc.system().then(
      (system): OrthancStatus => ({ reachable: true, version: system.Version, checkedAt: new Date(this.now()) }),
      (error: unknown): OrthancStatus => ({ reachable: false, error: (error as Error).message, checkedAt: new Date(this.now()) }),
    ).then((status) => {
      this.last = status;
      this.checking = undefined;
      return status;
    });
    return this.checking;
  }
}
