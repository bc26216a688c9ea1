/**
 * The result notification's signature as a receiver checks it: the same bytes openssl signs (the README's recipe),
 * refused when the body, the secret or the timestamp differ, and a stale timestamp refused as a replay.
 */
import { describe, expect, it } from "vitest";
import { signatureProblem, signNotification } from "../../../src/notify/signature.js";

const secret = "0123456789abcdef-test-secret";
const body = '{"event":"job.done","job":{"id":42}}';
const timestamp = 1767225600;
/** `printf '%s.' 1767225600 | cat - body.json | openssl dgst -sha256 -hmac "$secret"` (OpenSSL 3, run once). */
const OPENSSL = "sha256=4266e69cc193751916ef6c4f74b76a227158628a9fbb98acf675e17ed72e93fc";
const at = new Date(timestamp * 1000 + 30_000);

describe("result notification signature", () => {
  it("is HMAC-SHA256 over `${timestamp}.${body}`, as openssl computes it", () => {
    expect(signNotification(secret, timestamp, body)).toBe(OPENSSL);
    expect(signNotification(secret, timestamp, Buffer.from(body))).toBe(OPENSSL);
  });

  it("verifies the raw bytes with the secret, and refuses anything else", () => {
    const check = { secret, timestamp: String(timestamp), signature: OPENSSL, body, now: at };
    expect(signatureProblem(check)).toBeUndefined();
    expect(signatureProblem({ ...check, body: body.replace("42", "43") })).toMatch(/does not match/);
    expect(signatureProblem({ ...check, body: JSON.stringify(JSON.parse(body), null, 1) })).toMatch(/does not match/);
    expect(signatureProblem({ ...check, secret: `${secret}x` })).toMatch(/does not match/);
    expect(signatureProblem({ ...check, timestamp: String(timestamp + 1) })).toMatch(/does not match/);
    expect(signatureProblem({ ...check, signature: OPENSSL.slice(0, -2) })).toMatch(/does not match/);
    expect(signatureProblem({ ...check, signature: undefined })).toMatch(/Signature missing/);
    expect(signatureProblem({ ...check, timestamp: "yesterday" })).toMatch(/Timestamp missing/);
  });

  it("refuses a timestamp older than the tolerance: a replayed notification", () => {
    const check = { secret, timestamp: String(timestamp), signature: OPENSSL, body };
    expect(signatureProblem({ ...check, now: new Date((timestamp + 301) * 1000) })).toMatch(/replay/);
    expect(signatureProblem({ ...check, now: new Date((timestamp + 3600) * 1000), toleranceSeconds: 7200 })).toBeUndefined();
  });
});
