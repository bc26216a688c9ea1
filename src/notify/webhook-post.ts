/**
 * One attempt to hand a notification to its receiver: a POST of the exact stored body with its signature headers,
 * bounded by a timeout. Never throws: the outcome is a value (answered with a status, or no answer and why). The
 * receiver's body is read and dropped (so the connection can be reused) and never logged. A URL with user:password
 * (a receiver behind HTTP basic authentication) is sent with an Authorization header, as fetch will not take them in
 * the URL; they never appear in what an attempt reports.
 */
import { SOFTWARE_NAME, SOFTWARE_VERSION } from "../version.js";
import type { AttemptResult } from "./delivery-policy.js";
import { SignatureHeader, signNotification } from "./signature.js";

export const NotificationHeader = {
  ...SignatureHeader,
  Event: "X-CT-Enhance-Event",
  /** The same on every attempt of one notification: receivers drop duplicates by it. */
  Delivery: "X-CT-Enhance-Delivery",
  Attempt: "X-CT-Enhance-Attempt",
} as const;

export interface WebhookRequest {
  url: string;
  secret: string;
  timeoutMs: number;
  event: string;
  deliveryId: string;
  attempt: number;
  body: string;
}

/** The headers of one attempt, signed at `timestamp` (Unix seconds). */
export function notificationHeaders(request: WebhookRequest, timestamp: number): Record<string, string> {
  return {
    "Content-Type": "application/json; charset=utf-8",
    "User-Agent": `${SOFTWARE_NAME}/${SOFTWARE_VERSION}`,
    [NotificationHeader.Event]: request.event,
    [NotificationHeader.Delivery]: request.deliveryId,
    [NotificationHeader.Attempt]: String(request.attempt),
    [NotificationHeader.Timestamp]: String(timestamp),
    [NotificationHeader.Signature]: signNotification(request.secret, timestamp, request.body),
  };
}

/** `stop` aborts the attempt (the service is stopping): it then ends as no answer, "stopped". */
export async function postNotification(request: WebhookRequest, stop?: AbortSignal, now: () => Date = () => new Date()): Promise<AttemptResult> {
  const timestamp = Math.floor(now().getTime() / 1000);
  const { target, authorization } = withoutCredentials(request.url);
  try {
    const response = await fetch(target, {
      method: "POST",
      headers: { ...notificationHeaders(request, timestamp), ...(authorization ? { Authorization: authorization } : {}) },
      body: request.body,
      redirect: "manual",
      signal: stop ? AbortSignal.any([stop, AbortSignal.timeout(request.timeoutMs)]) : AbortSignal.timeout(request.timeoutMs),
    });
    await response.arrayBuffer().catch(() => undefined);
    return { kind: "answered", status: response.status, retryAfter: response.headers.get("retry-after") };
  } catch (error) {
    if (stop?.aborted) return { kind: "no-answer", reason: "stopped" };
    const name = (error as Error).name;
    if (name === "TimeoutError" || name === "AbortError") return { kind: "no-answer", reason: `timeout after ${request.timeoutMs} ms` };
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const reason = cause?.code ?? cause?.message ?? (error as Error).message;
    return { kind: "no-answer", reason: reason.split(request.url).join(receiverForLog(request.url)) };
  }
}

/** The URL without user:password, and those as an HTTP basic Authorization value. */
function withoutCredentials(url: string): { target: string; authorization?: string } {
  const parsed = new URL(url);
  if (!parsed.username && !parsed.password) return { target: url };
  const credentials = `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`;
  parsed.username = "";
  parsed.password = "";
  return { target: parsed.toString(), authorization: `Basic ${Buffer.from(credentials).toString("base64")}` };
}

/** The receiver's URL as a log may show it: no user:password, no query (either may hold a token). */
export function receiverForLog(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return "(unparseable URL)";
  }
}
