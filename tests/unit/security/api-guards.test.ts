/**
 * The API's guards, in process: the bearer token compared in constant time (sha256 digests of equal length, so a
 * token of another length is refused, never thrown on), every route but the open ones refused without it, bodies
 * read only after the token and at most BODY_LIMIT_BYTES (413 beyond), and the API bound to loopback by default.
 */
import { mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BODY_LIMIT_BYTES } from "../../../src/api/body-limit.js";
import { apiRoutes, createApi, listen } from "../../../src/api/server.js";
import { loadConfig } from "../../../src/config.js";
import { Ledger } from "../../../src/jobs/ledger.js";
import type { OrthancClient } from "../../../src/orthanc/rest.js";

/** The routes answered without the token (README, "The API"); every other declared route needs it. */
export const OPEN_ROUTES = ["GET /health", "GET /ready", "GET /openapi.json"];

describe("API guards", () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), "ct-enhance-guards-"));
  const ledger = new Ledger(dataDir);
  const orthanc = { system: async () => ({ Version: "1.10.1", Name: "test" }) } as unknown as OrthancClient;
  const token = "guard-token-0123456789";
  let server: Server;
  let base: string;

  beforeAll(async () => {
    const config = loadConfig(undefined, { CT_ENHANCE_DATA_DIR: dataDir, CT_ENHANCE_API_TOKEN: token });
    server = await listen(createApi({ config, ledger, orthanc }), "127.0.0.1", 0);
    const address = server.address();
    base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    ledger.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("refuses a missing, wrong, prefixed or differently long token on every route but the open ones", async () => {
    const config = loadConfig(undefined, { CT_ENHANCE_DATA_DIR: dataDir, CT_ENHANCE_API_TOKEN: token });
    const routes = apiRoutes({ config, ledger, orthanc } as never);
    const guarded = routes.filter((r) => !OPEN_ROUTES.includes(`${r.method.toUpperCase()} ${r.path}`));
    expect(routes.filter((r) => r.auth === false).map((r) => `${r.method.toUpperCase()} ${r.path}`).sort()).toEqual([...OPEN_ROUTES].sort());
    const wrong = [undefined, "Bearer", `Bearer ${token}x`, `Bearer ${token.slice(0, -1)}`, `bearer ${token}`, token, `Basic ${token}`, "Bearer " + "a".repeat(5000)];
    for (const r of guarded) {
      const url = `${base}${r.path.replace(/:([A-Za-z]+)/g, "1")}`;
      for (const authorization of wrong) {
        const response = await fetch(url, { method: r.method.toUpperCase(), headers: authorization ? { Authorization: authorization } : {} });
        expect(response.status, `${r.method} ${r.path}`).toBe(401);
        expect(response.headers.get("www-authenticate")).toMatch(/^Bearer/);
        expect(await response.text()).not.toContain(token);
      }
    }
    expect((await fetch(`${base}/jobs`, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
    for (const open of ["/health", "/ready", "/openapi.json"]) expect((await fetch(`${base}${open}`)).status, open).not.toBe(401);
  });

  it("answers 413 to a body over the limit, and reads no body before the token", async () => {
    const big = JSON.stringify({ pipeline: "x".repeat(BODY_LIMIT_BYTES + 1) });
    const post = (authorization?: string) => fetch(`${base}/series/abc/rerun`, {
      method: "POST", body: big, headers: { "Content-Type": "application/json", ...(authorization ? { Authorization: authorization } : {}) },
    });
    const refused = await post(`Bearer ${token}`);
    expect(refused.status).toBe(413);
    expect(((await refused.json()) as { error: string }).error).toBe(`request body over ${BODY_LIMIT_BYTES} bytes`);
    expect((await post()).status).toBe(401);
    for (const path of ["/jobs/1/retry", "/jobs/1/cancel", "/schedules/none/run"]) {
      const response = await fetch(`${base}${path}`, {
        method: "POST", body: big, headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
      });
      expect(response.status, path).toBe(413);
    }
  });

  it("binds to loopback unless told otherwise, and needs a token beyond loopback", () => {
    expect(loadConfig(undefined, {}).api.host).toBe("127.0.0.1");
    expect(loadConfig(undefined, { CT_ENHANCE_HOST: "::1" }).api.host).toBe("::1");
    expect(() => loadConfig(undefined, { CT_ENHANCE_HOST: "0.0.0.0" })).toThrow(/api\.token/);
    expect(loadConfig(undefined, { CT_ENHANCE_HOST: "0.0.0.0", CT_ENHANCE_API_TOKEN: token }).api.host).toBe("0.0.0.0");
  });
});
