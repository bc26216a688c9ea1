import { describe, expect, it } from "vitest";
import { checkApiAccess, ConfigError, loadConfig } from "../../src/config.js";

describe("schedule and API-access settings", () => {
  it("has reconcile, retry and retention schedules by default, and takes them from the environment", () => {
    const defaults = loadConfig(undefined, {}).schedules;
    expect(defaults).toMatchObject({ reconcile: "*/15 * * * *", retry: "* * * * *", retentionDays: 90, reconcileAtStart: true });
    const set = loadConfig(undefined, { CT_ENHANCE_RECONCILE_CRON: "*/5 * * * * *", CT_ENHANCE_RETENTION_CRON: "off",
      CT_ENHANCE_RETENTION_DAYS: "30", CT_ENHANCE_RECONCILE_AT_START: "false" }).schedules;
    expect(set).toMatchObject({ reconcile: "*/5 * * * * *", retention: "off", retentionDays: 30, reconcileAtStart: false });
  });

  it("refuses a bad cron expression or boolean, naming the key and the variable", () => {
    expect(() => loadConfig(undefined, { CT_ENHANCE_RETRY_CRON: "every minute" })).toThrow(/schedules\.retry \(env CT_ENHANCE_RETRY_CRON\)/);
    expect(() => loadConfig(undefined, { CT_ENHANCE_RECONCILE_AT_START: "maybe" })).toThrow(/not true or false/);
  });

  it("serves without a token only on loopback and only when allowed", () => {
    expect(() => checkApiAccess(loadConfig(undefined, {}))).toThrow(ConfigError);
    expect(() => checkApiAccess(loadConfig(undefined, { CT_ENHANCE_API_ALLOW_LOOPBACK_WITHOUT_TOKEN: "true" }))).not.toThrow();
    expect(() => checkApiAccess(loadConfig(undefined, { CT_ENHANCE_API_TOKEN: "t" }))).not.toThrow();
  });
});
