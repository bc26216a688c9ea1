/**
 * WADO-RS RetrieveSeries (PS3.18 10.4): the series' instances as Part-10 files, streamed one by one.
 *
 * We ask for Explicit VR Little Endian explicitly, so Orthanc transcodes compressed series (JPEG Lossless,
 * JPEG-LS, ...) on its side and the volume stage only ever sees uncompressed pixel data. Plain fetch plus the
 * streaming multipart splitter: each instance is yielded as soon as its bytes have arrived.
 */
import { DicomwebError, httpError, networkError, studyUrl, type DicomwebEndpoint } from "./endpoint.js";
import { MultipartError, readMultipartResponse } from "./multipart.js";

export const EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1";
const ACCEPT_PART10_EXPLICIT_LE =
  `multipart/related; type="application/dicom"; transfer-syntax=${EXPLICIT_VR_LITTLE_ENDIAN}`;

export interface RetrieveOptions {
  signal?: AbortSignal;
}

/**
 * Yields every instance of the series as Part-10 bytes (Explicit VR Little Endian), in the order the server sends
 * them. Throws DicomwebError: retryable for network failures, 5xx and a body cut short; not for 4xx or a body
 * that is not multipart.
 */
export async function* retrieveSeries(
  client: DicomwebEndpoint,
  studyInstanceUID: string,
  seriesInstanceUID: string,
  options: RetrieveOptions = {},
): AsyncGenerator<Uint8Array, void, undefined> {
  const url = studyUrl(client, studyInstanceUID, seriesInstanceUID);
  const what = `WADO-RS GET ${url}`;
  let response: Response;
  try {
    response = await fetch(url, {
      headers: { ...client.headers, Accept: ACCEPT_PART10_EXPLICIT_LE },
      signal: options.signal,
    });
  } catch (error) {
    throw networkError(what, error);
  }
  if (!response.ok) throw await httpError(what, response);

  let parts: AsyncGenerator<Uint8Array, void, undefined>;
  try {
    parts = readMultipartResponse(response);
  } catch (error) {
    await response.body?.cancel().catch(() => undefined);
    const message = error instanceof Error ? error.message : String(error);
    throw new DicomwebError(`${what} did not answer multipart/related: ${message}`, false, response.status, { cause: error });
  }
  let count = 0;
  try {
    for await (const part of parts) {
      count += 1;
      yield part;
    }
  } catch (error) {
    if (error instanceof MultipartError && !error.truncated) {
      const message = `${what}: malformed multipart body after ${count} instance(s): ${error.message}`;
      throw new DicomwebError(message, false, response.status, { cause: error });
    }
    if (error instanceof MultipartError) {
      throw new DicomwebError(`${what}: ${error.message} (connection closed early?)`, true, response.status, { cause: error });
    }
    throw networkError(`${what} (after ${count} instance(s))`, error);
  }
}
