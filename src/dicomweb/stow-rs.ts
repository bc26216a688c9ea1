/**
 * STOW-RS Store Instances (PS3.18 10.5) into one study: one multipart/related POST, and an answer read instance by
 * instance. The HTTP status alone says little: Orthanc answers 200 while instances failed, 400 when one part was
 * unreadable even though the others were stored, and 409 when none was. So every answer that carries a store
 * response (DICOM JSON with FailedSOPSequence 0008,1198 / ReferencedSOPSequence 0008,1199) is read:
 * - ReferencedSOPSequence items are stored (a WarningReason 0008,1196 still means stored);
 * - FailedSOPSequence items are failed, with their FailureReason (0008,1197);
 * - an instance we sent that the answer mentions in neither is failed with 0x0110 (processing failure): it was
 *   never confirmed stored.
 * Any other non-2xx answer, or a 2xx without a readable store response, throws a DicomwebError.
 */
import { data } from "dcmjs";
import { DicomwebError, httpError, networkError, studyUrl, type DicomwebEndpoint } from "./endpoint.js";
import { buildMultipartRelated } from "./multipart.js";

export interface StoreFailure {
  sopInstanceUID: string;
  /** DICOM status (PS3.18 Table 10.5.3-1 / PS3.4 Annex GG), e.g. 0xA700 out of resources, 0xC000 cannot understand. */
  reason: number;
}

export interface StoreResult {
  /** SOPInstanceUIDs the server confirmed (ReferencedSOPSequence). */
  stored: string[];
  failed: StoreFailure[];
}

/** Failure reason given to an instance the server's answer does not mention (PS3.4: "Processing failure"). */
export const UNCONFIRMED_INSTANCE_REASON = 0x0110;

const TAG = {
  FailedSOPSequence: "00081198",
  ReferencedSOPSequence: "00081199",
  ReferencedSOPInstanceUID: "00081155",
  FailureReason: "00081197",
  SOPInstanceUID: "00080018",
} as const;

/** Statuses whose body may still be a store response naming stored and failed instances. */
const STORE_RESPONSE_STATUSES = new Set([200, 202, 400, 409]);

export interface StoreOptions {
  signal?: AbortSignal;
}

type JsonDataset = Record<string, { vr?: string; Value?: unknown[] } | undefined>;

function sequenceItems(dataset: JsonDataset, tag: string): JsonDataset[] {
  const value = dataset[tag]?.Value;
  return Array.isArray(value) ? (value.filter((v) => v && typeof v === "object") as JsonDataset[]) : [];
}

function firstString(dataset: JsonDataset, tag: string): string | undefined {
  const v = dataset[tag]?.Value?.[0];
  return typeof v === "string" ? v : undefined;
}

function firstNumber(dataset: JsonDataset, tag: string): number | undefined {
  const v = dataset[tag]?.Value?.[0];
  return typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : undefined;
}

/** The SOPInstanceUID of a Part-10 instance (header only), or a placeholder naming its position in the request. */
function sopInstanceUidOf(instance: Uint8Array, index: number): string {
  try {
    const buffer =
      instance.byteOffset === 0 && instance.byteLength === instance.buffer.byteLength
        ? (instance.buffer as ArrayBuffer)
        : instance.slice().buffer;
    const dict = data.DicomMessage.readFile(buffer, { untilTag: TAG.SOPInstanceUID, includeUntilTagValue: true });
    const uid = dict.dict[TAG.SOPInstanceUID]?.Value?.[0];
    if (typeof uid === "string" && uid) return uid;
  } catch {
    // fall through to the placeholder
  }
  return `(unreadable instance #${index + 1} of the request)`;
}

/** Reads a DICOM JSON store response; undefined when the body is not one. */
function parseStoreResponse(text: string): { stored: string[]; failed: StoreFailure[] } | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  // PS3.18 allows the response as a dataset; some servers wrap it in a one-element array.
  const dataset = (Array.isArray(body) ? body[0] : body) as JsonDataset | undefined;
  if (!dataset || typeof dataset !== "object") return undefined;
  if (!(TAG.FailedSOPSequence in dataset) && !(TAG.ReferencedSOPSequence in dataset)) return undefined;
  const stored = sequenceItems(dataset, TAG.ReferencedSOPSequence)
    .map((item) => firstString(item, TAG.ReferencedSOPInstanceUID))
    .filter((uid): uid is string => uid !== undefined);
  const failed = sequenceItems(dataset, TAG.FailedSOPSequence).map((item) => ({
    sopInstanceUID: firstString(item, TAG.ReferencedSOPInstanceUID) ?? "(no SOPInstanceUID in FailedSOPSequence item)",
    reason: firstNumber(item, TAG.FailureReason) ?? UNCONFIRMED_INSTANCE_REASON,
  }));
  return { stored, failed };
}

/**
 * POSTs the instances (Part-10 bytes, all of `studyInstanceUID`) to `{root}/studies/{study}` and reports, per
 * instance, whether it was stored. A partial failure is reported in `failed`, never as success.
 */
export async function storeInstances(
  client: DicomwebEndpoint,
  studyInstanceUID: string,
  instances: Uint8Array[],
  options: StoreOptions = {},
): Promise<StoreResult> {
  if (instances.length === 0) return { stored: [], failed: [] };
  const url = studyUrl(client, studyInstanceUID);
  const what = `STOW-RS POST ${url} (${instances.length} instance(s))`;
  const { body, contentType } = buildMultipartRelated(instances, "application/dicom");

  let response: Response;
  let text: string;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { ...client.headers, "Content-Type": contentType, Accept: "application/dicom+json" },
      body,
      signal: options.signal,
    });
    if (!STORE_RESPONSE_STATUSES.has(response.status)) throw await httpError(what, response);
    text = await response.text();
  } catch (error) {
    if (error instanceof DicomwebError) throw error;
    throw networkError(what, error);
  }

  const answer = parseStoreResponse(text);
  if (!answer) {
    const excerpt = text.replace(/\s+/g, " ").trim().slice(0, 300);
    const ok = response.status === 200 || response.status === 202;
    throw new DicomwebError(
      `${what} answered HTTP ${response.status} without a DICOM JSON store response${excerpt ? `: ${excerpt}` : ""}`,
      // A 2xx without a store response cannot be trusted either way; storing again is safe (same UIDs).
      ok,
      response.status,
    );
  }

  const mentioned = new Set([...answer.stored, ...answer.failed.map((f) => f.sopInstanceUID)]);
  if (mentioned.size < instances.length) {
    instances.forEach((instance, index) => {
      const uid = sopInstanceUidOf(instance, index);
      if (!mentioned.has(uid)) answer.failed.push({ sopInstanceUID: uid, reason: UNCONFIRMED_INSTANCE_REASON });
    });
  }
  return answer;
}

/** A one-line summary of a store result's failures for logs and job records, e.g. "2 failed (0xA700 x2)". */
export function describeStoreFailures(result: StoreResult): string {
  if (result.failed.length === 0) return `${result.stored.length} stored`;
  const byReason = new Map<number, number>();
  for (const f of result.failed) byReason.set(f.reason, (byReason.get(f.reason) ?? 0) + 1);
  const reasons = [...byReason]
    .map(([reason, n]) => `0x${reason.toString(16).toUpperCase().padStart(4, "0")} x${n}`)
    .join(", ");
  return `${result.stored.length} stored, ${result.failed.length} failed (${reasons})`;
}
