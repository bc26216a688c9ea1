/**
 * What one answer of the receiver means for a notification, and when to try again: 2xx is delivered; a network
 * error, a timeout, 408, 429 and 5xx are worth another attempt (the receiver may be restarting or busy); any other
 * answer (400, 401, 403, 404, 410, 3xx: a wrong URL or secret, a payload it refuses) will not change by retrying and
 * gives up at once. Delays double from the first up to a ceiling; a Retry-After the receiver sends is honoured up to
 * the same ceiling.
 */

/** How one attempt ended: the receiver answered with a status, or no answer came. */
export type AttemptResult =
  | { kind: "answered"; status: number; retryAfter?: string | null }
  | { kind: "no-answer"; reason: string };

export const AttemptVerdict = {
  Delivered: "delivered",
  Retry: "retry",
  Refused: "refused",
} as const;
export type AttemptVerdict = (typeof AttemptVerdict)[keyof typeof AttemptVerdict];

export function judgeAttempt(result: AttemptResult): AttemptVerdict {
  if (result.kind === "no-answer") return AttemptVerdict.Retry;
  const { status } = result;
  if (status >= 200 && status < 300) return AttemptVerdict.Delivered;
  if (status === 408 || status === 429 || status >= 500) return AttemptVerdict.Retry;
  return AttemptVerdict.Refused;
}

/** The attempt in words for a log line or the job's timeline, e.g. "HTTP 503" or "no answer: timeout after 10000 ms". */
export function describeAttempt(result: AttemptResult): string {
  return result.kind === "answered" ? `HTTP ${result.status}` : `no answer: ${result.reason}`;
}

export interface BackoffPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  retryDelaySeconds: number;
  maxRetryDelaySeconds: number;
}

/**
 * Milliseconds to wait after failed attempt number `attempt` (1 = the first), or undefined when that was the last
 * one allowed.
 */
export function retryDelayMs(policy: BackoffPolicy, attempt: number, result: AttemptResult, now = Date.now()): number | undefined {
  if (attempt >= policy.maxAttempts) return undefined;
  const ceiling = policy.maxRetryDelaySeconds * 1000;
  const doubled = Math.min(ceiling, policy.retryDelaySeconds * 1000 * 2 ** (attempt - 1));
  const asked = result.kind === "answered" ? retryAfterMs(result.retryAfter, now) : undefined;
  return asked === undefined ? doubled : Math.min(ceiling, Math.max(doubled, asked));
}

/** Retry-After as seconds or an HTTP date, in milliseconds from now; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null | undefined, now = Date.now()): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
