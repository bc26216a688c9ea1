/**
 * Credentials never reach a log line or an error message: a URL's user:password, an Authorization value, and the
 * configuration's secrets (API token, Orthanc password, webhook secret) are replaced by [redacted] (src/redact.ts),
 * in every line src/log.ts writes, and Orthanc's login given in its URL never appears in the client's errors.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../../../src/config.js";
import { logger } from "../../../src/log.js";
import { OrthancClient } from "../../../src/orthanc/rest.js";
import { redact, urlForLog, withholdConfigSecrets, withholdSecrets } from "../../../src/redact.js";

describe("redaction of credentials", () => {
  afterEach(() => vi.restoreAllMocks());

  it("removes user:password from URLs and the value of Authorization headers", () => {
    expect(redact("Orthanc at http://admin:s3cr3t@pacs.local:8042/x failed")).toBe("Orthanc at http://[redacted]@pacs.local:8042/x failed");
    expect(redact('{"authorization":"Bearer abc.DEF-123"}')).toBe('{"authorization":"Bearer [redacted]"}');
    expect(redact("Authorization: Basic YWRtaW46czNjcjN0")).toBe("Authorization: Basic [redacted]");
    expect(urlForLog("https://u:p@host:1/dicom-web")).toBe("https://host:1/dicom-web");
    expect(urlForLog("http://127.0.0.1:8042")).toBe("http://127.0.0.1:8042");
  });

  it("removes the configuration's secrets wherever they appear, also as JSON escapes them", () => {
    const config = loadConfig(undefined, {
      CT_ENHANCE_API_TOKEN: "tok-4f9a1c", CT_ENHANCE_ORTHANC_USERNAME: "orthanc", CT_ENHANCE_ORTHANC_PASSWORD: 'pw"quoted\\9',
      CT_ENHANCE_WEBHOOK_URL: "https://ris.example/hook", CT_ENHANCE_WEBHOOK_SECRET: "webhook-secret-0123456789",
    });
    withholdConfigSecrets(config);
    const basic = Buffer.from('orthanc:pw"quoted\\9').toString("base64");
    const text = `token tok-4f9a1c, password pw"quoted\\9, ${JSON.stringify('pw"quoted\\9')}, webhook-secret-0123456789, ${basic}`;
    const out = redact(text);
    for (const secret of ["tok-4f9a1c", 'pw"quoted\\9', 'pw\\"quoted\\\\9', "webhook-secret-0123456789", basic]) {
      expect(out.includes(secret), "a secret survived").toBe(false);
    }
  });

  it("applies to every line the logger writes, in the message and in any field", () => {
    withholdSecrets("the-api-token-77");
    const lines: string[] = [];
    vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    logger("test").error("cannot reach http://user:pw-9@orthanc:8042 with the-api-token-77", {
      url: "http://user:pw-9@orthanc:8042/dicom-web", header: "Bearer the-api-token-77", nested: { token: "the-api-token-77" },
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toMatch(/pw-9|the-api-token-77/);
    expect(lines[0]).toContain("http://[redacted]@orthanc:8042");
  });

  it("takes Orthanc's login out of its URL: the client's errors show the URL without it", async () => {
    const orthanc = new OrthancClient({ url: "http://ct-user:orthanc-pw-31@127.0.0.1:1", dicomwebRoot: "/dicom-web", timeoutMs: 2000 });
    const error = (await orthanc.system().catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(/Orthanc at http:\/\/127\.0\.0\.1:1 cannot be reached/);
    expect(error.message).not.toMatch(/ct-user|orthanc-pw-31/);
    const endpoint = orthanc.dicomweb();
    expect(endpoint.root).toBe("http://127.0.0.1:1/dicom-web");
    expect(endpoint.headers.Authorization).toBe(`Basic ${Buffer.from("ct-user:orthanc-pw-31").toString("base64")}`);
  });
});
