/**
 * The signature a result notification carries, so its receiver knows it came from this node and was not replayed:
 * HMAC-SHA256, keyed with the shared secret, over `${timestamp}.${body}` (the Unix time in seconds as sent in
 * X-CT-Enhance-Timestamp, a dot, then the exact bytes of the body), sent as `X-CT-Enhance-Signature: sha256=<hex>`.
 * The same scheme as Stripe's and Slack's webhooks; a receiver checks it with
 * `printf '%s.' "$TS" | cat - body.json | openssl dgst -sha256 -hmac "$SECRET"`.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export const SignatureHeader = {
  Signature: "X-CT-Enhance-Signature",
  Timestamp: "X-CT-Enhance-Timestamp",
} as const;

const PREFIX = "sha256=";

/** `sha256=<hex>` of `${timestamp}.${body}` under `secret`. */
export function signNotification(secret: string, timestamp: number, body: string | Uint8Array): string {
  const hmac = createHmac("sha256", secret);
  hmac.update(`${timestamp}.`);
  hmac.update(body);
  return `${PREFIX}${hmac.digest("hex")}`;
}

export interface SignatureCheck {
  secret: string;
  /** X-CT-Enhance-Timestamp as received. */
  timestamp: string | undefined;
  /** X-CT-Enhance-Signature as received. */
  signature: string | undefined;
  /** The raw body bytes as received (not re-serialised JSON). */
  body: string | Uint8Array;
  /** How old a timestamp may be (either way), seconds: older ones are refused as replays. Default 300. */
  toleranceSeconds?: number;
  now?: Date;
}

/** What a receiver does: why a notification is refused, or undefined when its signature holds. */
export function signatureProblem(check: SignatureCheck): string | undefined {
  const { timestamp, signature } = check;
  if (!timestamp || !/^\d+$/.test(timestamp)) return `${SignatureHeader.Timestamp} missing or not Unix seconds`;
  if (!signature?.startsWith(PREFIX)) return `${SignatureHeader.Signature} missing or not 'sha256=<hex>'`;
  const age = Math.abs((check.now ?? new Date()).getTime() / 1000 - Number(timestamp));
  const tolerance = check.toleranceSeconds ?? 300;
  if (age > tolerance) return `timestamp ${Math.round(age)} s away from now (tolerance ${tolerance} s): a replay, or a clock off`;
  const expected = Buffer.from(signNotification(check.secret, Number(timestamp), check.body));
  const received = Buffer.from(signature);
  if (expected.length !== received.length || !timingSafeEqual(expected, received)) return "signature does not match";
  return undefined;
}
