import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";

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
});
