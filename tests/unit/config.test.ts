import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, webhookSettings } from "../../src/config.js";

describe("configuration", () => {
  it("has working defaults", () => {
    const config = loadConfig(undefined, {});
    expect(config.orthanc.url).toBe("http://127.0.0.1:8042");
    expect(config.orthanc.dicomwebRoot).toBe("/dicom-web");
    expect(config.inference.provider).toBe("auto");
  });

  it("takes the environment over the defaults", () => {
    const config = loadConfig(undefined, { CT_ENHANCE_ORTHANC_URL: "http://10.1.2.3:9000", CT_ENHANCE_PORT: "9191" });
    expect(config.orthanc.url).toBe("http://10.1.2.3:9000");
    expect(config.api.port).toBe(9191);
  });

  it("names the key and the variable of a bad value", () => {
    expect(() => loadConfig(undefined, { CT_ENHANCE_ORTHANC_URL: "not a url" })).toThrow(
      /config key orthanc\.url \(env CT_ENHANCE_ORTHANC_URL\)/,
    );
    expect(() => loadConfig(undefined, { CT_ENHANCE_PORT: "eighty" })).toThrow(/api\.port \(from CT_ENHANCE_PORT\)/);
    expect(() => loadConfig(undefined, { CT_ENHANCE_PROVIDER: "tpu" })).toThrow(ConfigError);
  });

  it("refuses an API open beyond loopback without a token", () => {
    expect(() => loadConfig(undefined, { CT_ENHANCE_HOST: "0.0.0.0" })).toThrow(/api\.token/);
    expect(loadConfig(undefined, { CT_ENHANCE_HOST: "0.0.0.0", CT_ENHANCE_API_TOKEN: "s3cret" }).api.host).toBe("0.0.0.0");
  });

  it("has result notification off by default, and needs a secret of 16+ characters once a URL is set", () => {
    expect(webhookSettings(loadConfig(undefined, {}))).toBeUndefined();
    expect(() => loadConfig(undefined, { CT_ENHANCE_WEBHOOK_URL: "https://ris.example.org/hooks/ct" }))
      .toThrow(/config key webhook\.secret \(env CT_ENHANCE_WEBHOOK_SECRET\): required when webhook\.url is set/);
    const secret = "a-secret-of-a-proper-length";
    let problem = "";
    try {
      loadConfig(undefined, { CT_ENHANCE_WEBHOOK_URL: "https://ris.example.org/hooks/ct", CT_ENHANCE_WEBHOOK_SECRET: "short-secret" });
    } catch (error) {
      problem = (error as Error).message;
    }
    expect(problem).toMatch(/webhook\.secret \(env CT_ENHANCE_WEBHOOK_SECRET\): must be at least 16 characters/);
    expect(problem).not.toContain("short-secret"); // a bad secret is named, never echoed
    expect(() => loadConfig(undefined, { CT_ENHANCE_WEBHOOK_URL: "ftp://ris/x", CT_ENHANCE_WEBHOOK_SECRET: secret })).toThrow(/webhook\.url/);
    const on = webhookSettings(loadConfig(undefined, {
      CT_ENHANCE_WEBHOOK_URL: "https://ris.example.org/hooks/ct", CT_ENHANCE_WEBHOOK_SECRET: secret,
      CT_ENHANCE_WEBHOOK_MAX_ATTEMPTS: "3", CT_ENHANCE_WEBHOOK_RETRY_DELAY_SECONDS: "0.5",
    }));
    expect(on).toMatchObject({ url: "https://ris.example.org/hooks/ct", secret, maxAttempts: 3, retryDelaySeconds: 0.5, timeoutMs: 10_000, maxRetryDelaySeconds: 900 });
  });
});
