/**
 * Where a DICOMweb service answers and how to authenticate to it. Shared by WADO-RS (fetch) and STOW-RS (store).
 */
import { StageError, type Stage } from "../pipeline/stage-error.js";

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

/** A StageError for a non-2xx answer, with the status and the start of the body (an Orthanc error is JSON). */
export async function httpStageError(stage: Stage, what: string, response: Response): Promise<StageError> {
  let excerpt = "";
  try {
    excerpt = (await response.text()).replace(/\s+/g, " ").trim().slice(0, BODY_EXCERPT_CHARS);
  } catch {
    excerpt = "(body unreadable)";
  }
  const statusText = response.statusText ? ` ${response.statusText}` : "";
  return new StageError(
    stage,
    `${what} answered HTTP ${response.status}${statusText}${excerpt ? `: ${excerpt}` : ""}`,
    isRetryableStatus(response.status),
  );
}

/** A StageError for a request that got no answer at all (refused, reset, DNS, timeout): always retryable. */
export function networkStageError(stage: Stage, what: string, error: unknown): StageError {
  // fetch reports "fetch failed" and puts the reason (ECONNREFUSED, ENOTFOUND, ...) in `cause`.
  const inner = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const cause = inner instanceof Error ? inner.message : String(inner);
  return new StageError(stage, `${what} failed before an answer arrived: ${cause}`, true, { cause: error });
}
