/**
 * UIDs under the 2.25 root (ISO/IEC 9834-8: a UUID written as one decimal integer), PS3.5 B.2.
 *
 * Identity is explicit and deterministic: a derived series' UIDs are computed from what it is derived from (source
 * series, pipeline, model version, run number), so storing the same result twice after a crash lands on the same
 * SOPInstanceUIDs (Orthanc keeps one copy) instead of writing a duplicate series. A deliberate re-run bumps the run
 * number and so gets new UIDs.
 */
import { createHash, randomUUID } from "node:crypto";

function uuidBytesToUid(bytes: Buffer): string {
  // Set the version (8, name-based custom, RFC 9562) and variant bits so the integer is a well-formed UUID.
  const b = Buffer.from(bytes.subarray(0, 16));
  b[6] = (b[6]! & 0x0f) | 0x80;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return `2.25.${BigInt(`0x${b.toString("hex")}`).toString(10)}`;
}

/** A UID that depends only on `parts`: the same parts give the same UID, on any machine. */
export function deterministicUid(...parts: (string | number)[]): string {
  const hash = createHash("sha256").update(parts.map(String).join("\u0000")).digest();
  return uuidBytesToUid(hash);
}

/** A fresh random UID. */
export function randomUid(): string {
  return uuidBytesToUid(Buffer.from(randomUUID().replace(/-/g, ""), "hex"));
}
