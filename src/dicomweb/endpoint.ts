/**
 * Where a DICOMweb service answers and how to authenticate to it. Shared by WADO-RS (fetch) and STOW-RS (store).
 */
import { OperationalError } from "../stage-error.js";

export interface DicomwebEndpoint {
  /** Base URL of the DICOMweb API, without a trailing slash, e.g. http://127.0.0.1:8042/dicom-web */
  root: string;
  /** Headers sent with every request, e.g. Authorization. */
  headers: Record<string, string>;
}

/** `{root}/studies/{study}[/series/{series}]`, UIDs URL-encoded. */
export function studyUrl(endpoint: DicomwebEndpoint, studyInstanceUID: string, seriesInstanceUID?: string): string {
  const root = endpoint.root.replace(/\/+$/, "");
  const study = `${root}/studies/${encodeURIComponent(studyInstanceUID)}`;
  return seriesInstanceUID === undefined ? study : `${study}/series/${encodeURIComponent(seriesInstanceUID)}`;
}

/** HTTP statuses worth retrying: the server is down, overloaded or timed out. Other 4xx are about the request. */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

const BODY_EXCERPT_CHARS = 300;

/** A DICOMweb transaction that failed: no answer, an HTTP error, or an answer that cannot be read. */
export class DicomwebError extends OperationalError {
  override readonly name = "DicomwebError";
  constructor(
    message: string,
    retryable: boolean,
    /** HTTP status, or undefined when no answer (or no usable one) arrived. */
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, retryable, options);
  }
}

/** The error for a non-2xx answer, with the status and the start of the body (an Orthanc error is JSON). */
export async function httpError(what: string, response: Response): Promise<DicomwebError> {
  let excerpt = "";
  try {
    excerpt = (await response.text()).replace(/\s+/g, " ").trim().slice(0, BODY_EXCERPT_CHARS);
  } catch {
    excerpt = "(body unreadable)";
  }
  const statusText = response.statusText ? ` ${response.statusText}` : "";
  return new DicomwebError(
    `${what} answered HTTP ${response.status}${statusText}${excerpt ? `: ${excerpt}` : ""}`,
    isRetryableStatus(response.status),
    response.status,
  );
}

/** The error for a request that got no answer at all (refused, reset, DNS, timeout): always retryable. */
export function networkError(what: string, error: unknown): DicomwebError {
  // fetch reports "fetch failed" and puts the reason (ECONNREFUSED, ENOTFOUND, ...) in `cause`.
  const inner = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const cause = inner instanceof Error ? inner.message : String(inner);
  return new DicomwebError(`${what} failed before an answer arrived: ${cause}`, true, undefined, { cause: error });
}
