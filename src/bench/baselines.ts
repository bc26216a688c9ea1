/**
 * The raw baselines the pipeline's transfer stages are judged against, with nothing of ours in the way: the bare
 * WADO-RS GET of the series read into memory, and bare STOW-RS POSTs of the same derived bytes, one plain fetch each,
 * cut into requests the way the store stage cuts them.
 */
import { randomBytes } from "node:crypto";

export interface RawEndpoint {
  /** DICOMweb root, e.g. http://127.0.0.1:8042/dicom-web */
  root: string;
  authorization: string;
}

const ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1';

/** GET {root}/studies/{study}/series/{series}, whole body into memory. */
export async function rawWadoGet(endpoint: RawEndpoint, study: string, series: string): Promise<{ ms: number; bytes: number }> {
  const started = performance.now();
  const response = await fetch(`${endpoint.root}/studies/${study}/series/${series}`, {
    headers: { Authorization: endpoint.authorization, Accept: ACCEPT },
  });
  if (!response.ok) throw new Error(`raw WADO-RS GET answered HTTP ${response.status}: ${await response.text()}`);
  const body = await response.arrayBuffer();
  return { ms: performance.now() - started, bytes: body.byteLength };
}

function multipartBody(instances: readonly Uint8Array[]): { body: Buffer; contentType: string } {
  const boundary = `bench-${randomBytes(12).toString("hex")}`;
  const chunks: Buffer[] = [];
  for (const instance of instances) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), Buffer.from(instance.buffer, instance.byteOffset, instance.byteLength), Buffer.from("\r\n"));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/related; type="application/dicom"; boundary=${boundary}` };
}

/**
 * POST {root}/studies/{study}: `perRequest` instances a request, `parallel` requests in flight (the store stage's
 * defaults are 32 and 4), or everything in one request with perRequest = Infinity. Bodies are built before the clock
 * starts. Throws when Orthanc does not confirm every instance.
 */
export async function rawStowPost(
  endpoint: RawEndpoint,
  study: string,
  instances: readonly Uint8Array[],
  perRequest: number,
  parallel: number,
): Promise<{ ms: number; bytes: number; requests: number }> {
  const size = Math.min(perRequest, instances.length);
  const bodies: { body: Buffer; contentType: string }[] = [];
  for (let i = 0; i < instances.length; i += size) bodies.push(multipartBody(instances.slice(i, i + size)));
  let next = 0;
  let confirmed = 0;
  const sender = async (): Promise<void> => {
    while (next < bodies.length) {
      const { body, contentType } = bodies[next++]!;
      const response = await fetch(`${endpoint.root}/studies/${study}`, {
        method: "POST",
        headers: { Authorization: endpoint.authorization, "Content-Type": contentType, Accept: "application/dicom+json" },
        body,
      });
      const answer = (await response.json()) as Record<string, { Value?: unknown[] } | undefined>;
      if (!response.ok || answer["00081198"]?.Value?.length) {
        throw new Error(`raw STOW-RS POST answered HTTP ${response.status} with failures: ${JSON.stringify(answer).slice(0, 300)}`);
      }
      confirmed += answer["00081199"]?.Value?.length ?? 0;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(parallel, bodies.length) }, sender));
  const ms = performance.now() - started;
  if (confirmed !== instances.length) throw new Error(`raw STOW-RS: Orthanc confirmed ${confirmed} of ${instances.length} instances`);
  return { ms, bytes: bodies.reduce((n, b) => n + b.body.length, 0), requests: bodies.length };
}
