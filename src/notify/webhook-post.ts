/**
 * One attempt to hand a notification to its receiver: a POST of the exact stored body with its signature headers,
 * bounded by a timeout. Never throws: the outcome is a value (answered with a status, or no answer and why). The
 * receiver's body is read and dropped (so the connection can be reused) and never logged.
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

export async function postNotification(request: WebhookRequest, now: () => Date = () => new Date()): Promise<AttemptResult> {
  const timestamp = Math.floor(now().getTime() / 1000);
  try {
    const response = await fetch(request.url, {
      method: "POST",
      headers: notificationHeaders(request, timestamp),
      body: request.body,
      redirect: "manual",
      signal: AbortSignal.timeout(request.timeoutMs),
    });
    await response.arrayBuffer().catch(() => undefined);
    return { kind: "answered", status: response.status, retryAfter: response.headers.get("retry-after") };
  } catch (error) {
    const name = (error as Error).name;
    if (name === "TimeoutError" || name === "AbortError") return { kind: "no-answer", reason: `timeout after ${request.timeoutMs} ms` };
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return { kind: "no-answer", reason: cause?.code ?? cause?.message ?? (error as Error).message };
  }
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
