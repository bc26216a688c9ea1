/**
 * The few Orthanc REST calls ct-enhance needs (the change feed, series and instance headers, UID lookup), with
 * errors that carry the HTTP status and whether trying again can help.
 */
import type { Config } from "../config.js";
import type { DicomwebEndpoint } from "../dicomweb/endpoint.js";
import { OperationalError } from "../stage-error.js";

export class OrthancError extends OperationalError {
  override readonly name = "OrthancError";
  constructor(
    message: string,
    /** HTTP status, or 0 when Orthanc could not be reached at all. */
    readonly status: number,
    retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, retryable, options);
  }
}

export type ChangeType = "NewSeries" | "StableSeries" | "NewInstance" | "NewStudy" | "NewPatient" | string;

export interface OrthancChange {
  ChangeType: ChangeType;
  ID: string;
  Path: string;
  ResourceType: "Patient" | "Study" | "Series" | "Instance";
  Seq: number;
  Date: string;
}

export interface OrthancChanges {
  Changes: OrthancChange[];
  Done: boolean;
  Last: number;
}

export interface OrthancSeries {
  ID: string;
  Instances: string[];
  IsStable: boolean;
  /** Orthanc's local time, e.g. 20261123T232822. */
  LastUpdate: string;
  MainDicomTags: Record<string, string | undefined>;
  ParentStudy: string;
}

export interface OrthancStudy {
  ID: string;
  MainDicomTags: Record<string, string | undefined>;
  Series: string[];
}

/** Orthanc's "simplified" tags: keyword -> string, or nested arrays of objects for sequences. */
export type SimplifiedTags = Record<string, unknown>;

export class OrthancClient {
  private readonly baseUrl: string;
  private readonly headers: Record<string, string>;

  constructor(private readonly config: Config["orthanc"]) {
    // user:password in the URL is taken as the login (fetch refuses such URLs) and kept out of every message.
    const parsed = new URL(config.url);
    const username = config.username ?? (parsed.username ? decodeURIComponent(parsed.username) : undefined);
    const password = config.password ?? (parsed.password ? decodeURIComponent(parsed.password) : undefined);
    parsed.username = "";
    parsed.password = "";
    this.baseUrl = parsed.toString().replace(/\/+$/, "");
    this.headers = {};
    if (username) {
      const credentials = Buffer.from(`${username}:${password ?? ""}`).toString("base64");
      this.headers.Authorization = `Basic ${credentials}`;
    }
  }

  /** Where the DICOMweb plugin answers, with the same credentials. */
  dicomweb(): DicomwebEndpoint {
    return { root: `${this.baseUrl}${this.config.dicomwebRoot.replace(/\/+$/, "")}`, headers: { ...this.headers } };
  }

  async system(): Promise<{ Version: string; Name: string }> {
    return this.getJson("/system");
  }

  async changes(since: number, limit: number): Promise<OrthancChanges> {
    return this.getJson(`/changes?since=${since}&limit=${limit}`);
  }

  async lastChange(): Promise<number> {
    return (await this.getJson<OrthancChanges>("/changes?last")).Last;
  }

  /** The series, or undefined when Orthanc no longer has it. */
  async series(id: string): Promise<OrthancSeries | undefined> {
    return this.getJson<OrthancSeries>(`/series/${encodeURIComponent(id)}`, { allowNotFound: true });
  }

  async study(id: string): Promise<OrthancStudy | undefined> {
    return this.getJson<OrthancStudy>(`/studies/${encodeURIComponent(id)}`, { allowNotFound: true });
  }

  async instanceTags(id: string): Promise<SimplifiedTags> {
    return this.getJson(`/instances/${encodeURIComponent(id)}/simplified-tags`);
  }

  /** The transfer syntax an instance is stored in (Orthanc's metadata), or undefined when Orthanc does not say. */
  async instanceTransferSyntax(id: string): Promise<string | undefined> {
    const metadata = await this.getJson<Record<string, string>>(`/instances/${encodeURIComponent(id)}/metadata?expand`, { allowNotFound: true });
    return metadata?.TransferSyntax;
  }

  async allSeries(): Promise<string[]> {
    return this.getJson("/series");
  }

  /** A page of series with their details (ID, LastUpdate, IsStable, ...), in Orthanc's order. */
  async seriesPage(since: number, limit: number): Promise<OrthancSeries[]> {
    return this.getJson(`/series?expand&since=${since}&limit=${limit}`);
  }

  /** Orthanc IDs of the resources with this DICOM UID (any level). */
  async lookup(uid: string): Promise<{ ID: string; Type: string }[]> {
    return this.request<{ ID: string; Type: string }[]>("/tools/lookup", { method: "POST", body: uid });
  }

  /** The Orthanc series ID of a SeriesInstanceUID, or undefined. */
  async seriesIdOf(seriesInstanceUID: string): Promise<string | undefined> {
    return (await this.lookup(seriesInstanceUID)).find((hit) => hit.Type === "Series")?.ID;
  }

  /** Deletes a series (its Orthanc ID) and its instances; one already gone is no error. */
  async deleteSeries(id: string): Promise<void> {
    await this.request<unknown>(`/series/${encodeURIComponent(id)}`, { method: "DELETE" }, true);
  }

  private async getJson<T>(pathAndQuery: string, options: { allowNotFound: true }): Promise<T | undefined>;
  private async getJson<T>(pathAndQuery: string): Promise<T>;
  private async getJson<T>(pathAndQuery: string, options?: { allowNotFound: boolean }): Promise<T | undefined> {
    return this.request<T>(pathAndQuery, { method: "GET" }, options?.allowNotFound ?? false);
  }

  private async request<T>(pathAndQuery: string, init: RequestInit, allowNotFound = false): Promise<T> {
    const url = `${this.baseUrl}${pathAndQuery}`;
    let response: Response;
    try {
      response = await fetch(url, {
        ...init,
        headers: { ...this.headers, ...(init.headers as Record<string, string> | undefined) },
        signal: AbortSignal.timeout(this.config.timeoutMs),
      });
    } catch (error) {
      throw new OrthancError(
        `Orthanc at ${this.baseUrl} cannot be reached (${(error as Error).message}); is it running?`,
        0,
        true,
        { cause: error },
      );
    }
    if (response.status === 404 && allowNotFound) return undefined as T;
    if (!response.ok) {
      const body = (await response.text()).slice(0, 300);
      if (response.status === 401 || response.status === 403) {
        throw new OrthancError(
          `Orthanc refuses the login (HTTP ${response.status} to ${init.method ?? "GET"} ${pathAndQuery}): ` +
          `check CT_ENHANCE_ORTHANC_USERNAME and CT_ENHANCE_ORTHANC_PASSWORD against Orthanc's RegisteredUsers`,
          response.status,
          false,
        );
      }
      throw new OrthancError(
        `Orthanc answered ${response.status} to ${init.method ?? "GET"} ${pathAndQuery}: ${body}`,
        response.status,
        response.status >= 500 || response.status === 429,
      );
    }
    return (await response.json()) as T;
  }
}
