/**
 * What each answer of a receiver means (2xx delivered; no answer, 408, 429, 5xx retried; other 4xx and 3xx given up
 * at once) and when the next attempt comes (doubling up to a ceiling, Retry-After honoured within it).
 */
import { describe, expect, it } from "vitest";
import { type AttemptResult, judgeAttempt, retryAfterMs, retryDelayMs } from "../../../src/notify/delivery-policy.js";

const answered = (status: number, retryAfter?: string): AttemptResult => ({ kind: "answered", status, retryAfter: retryAfter ?? null });

describe("webhook delivery policy", () => {
  it("judges each answer", () => {
    for (const status of [200, 201, 202, 204]) expect(judgeAttempt(answered(status)), String(status)).toBe("delivered");
    for (const status of [408, 429, 500, 502, 503, 504]) expect(judgeAttempt(answered(status)), String(status)).toBe("retry");
    for (const status of [301, 302, 400, 401, 403, 404, 410, 413, 422]) expect(judgeAttempt(answered(status)), String(status)).toBe("refused");
    expect(judgeAttempt({ kind: "no-answer", reason: "ECONNREFUSED" })).toBe("retry");
    expect(judgeAttempt({ kind: "no-answer", reason: "timeout after 10000 ms" })).toBe("retry");
  });

  it("doubles the delay up to its ceiling, and stops after the last attempt", () => {
    const policy = { maxAttempts: 6, retryDelaySeconds: 5, maxRetryDelaySeconds: 30 };
    const refused = { kind: "no-answer", reason: "ECONNREFUSED" } as const;
    expect([1, 2, 3, 4, 5, 6].map((attempt) => retryDelayMs(policy, attempt, refused))).toEqual([5000, 10_000, 20_000, 30_000, 30_000, undefined]);
    expect(retryDelayMs({ ...policy, maxAttempts: 1 }, 1, refused)).toBeUndefined();
  });

  it("honours Retry-After (seconds or an HTTP date) within the ceiling, never sooner than its own delay", () => {
    const policy = { maxAttempts: 5, retryDelaySeconds: 5, maxRetryDelaySeconds: 60 };
    const now = Date.parse("2026-12-01T10:00:00Z");
    expect(retryDelayMs(policy, 1, answered(429, "20"), now)).toBe(20_000);
    expect(retryDelayMs(policy, 1, answered(503, "1"), now)).toBe(5000);
    expect(retryDelayMs(policy, 1, answered(503, "3600"), now)).toBe(60_000);
    expect(retryDelayMs(policy, 1, answered(503, "Tue, 01 Dec 2026 10:00:40 GMT"), now)).toBe(40_000);
    expect(retryAfterMs("soon", now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
  });
});
