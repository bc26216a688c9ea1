/**
 * The API's routes are declared once (src/api/route.ts): the declaration validates each request, naming the bad
 * field, and writes the route's OpenAPI entry. A real Ledger, an Orthanc stand-in that is not needed by these routes.
 */
import { mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApi, listen } from "../../src/api/server.js";
import { loadConfig } from "../../src/config.js";
import { Ledger } from "../../src/jobs/ledger.js";
import type { OrthancClient } from "../../src/orthanc/rest.js";

describe("API routes declared with zod", () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), "ct-enhance-api-"));
  const ledger = new Ledger(dataDir);
  const orthanc = { system: async () => ({ Version: "1.10.1", Name: "test" }) } as unknown as OrthancClient;
  let server: Server;
  let base: string;
  const get = async (route: string, token = "secret") =>
    fetch(`${base}${route}`, { headers: { Authorization: `Bearer ${token}` } });

  beforeAll(async () => {
    const config = loadConfig(undefined, { CT_ENHANCE_DATA_DIR: dataDir, CT_ENHANCE_API_TOKEN: "secret" });
    server = await listen(createApi({ config, ledger, orthanc }), "127.0.0.1", 0);
    const address = server.address();
    base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    ledger.jobs.create({ sourceOrthancId: "o1", sourceSeriesUid: "1.2.3", studyUid: "1.2", pipeline: "p", modelId: "m", modelVersion: "1" });
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    ledger.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("answers 400 naming the field a request got wrong, before the handler runs", async () => {
    const cases: [string, RegExp][] = [
      ["/jobs?limit=0", /^query\.limit: /],
      ["/jobs?state=finished", /^query\.state: /],
      ["/jobs/abc", /^path\.id: /],
    ];
    for (const [route, error] of cases) {
      const response = await get(route);
      expect(response.status, route).toBe(400);
      expect(((await response.json()) as { error: string }).error, route).toMatch(error);
    }
    const rerun = await fetch(`${base}/series/x/rerun`, {
      method: "POST", headers: { Authorization: "Bearer secret", "Content-Type": "application/json" }, body: '{"force": "yes"}',
    });
    expect(rerun.status).toBe(400);
    expect(((await rerun.json()) as { error: string }).error).toMatch(/^body\.force: /);
  });

  it("reads the query as declared: numbers coerced, filters applied", async () => {
    const jobs = (await (await get("/jobs?limit=1&state=queued")).json()) as { id: number }[];
    expect(jobs.map((j) => j.id)).toEqual([1]);
    expect((await get("/jobs/1")).status).toBe(200);
    expect((await get("/jobs/2")).status).toBe(404);
  });

  it("guards every route but the probes and the description with the token", async () => {
    expect((await get("/jobs", "wrong")).status).toBe(401);
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect((await fetch(`${base}/openapi.json`)).status).toBe(200);
  });

  it("describes each route in /openapi.json from the same declaration", async () => {
    const document = (await (await fetch(`${base}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { parameters: { name: string; in: string; required: boolean; schema: Record<string, unknown> }[];
        security?: unknown[]; responses: Record<string, unknown>; requestBody?: unknown }>>;
    };
    const list = document.paths["/jobs"]!.get!;
    const limit = list.parameters.find((p) => p.name === "limit")!;
    expect(limit).toMatchObject({ in: "query", required: false, description: "only the last N" });
    expect(limit.schema).toMatchObject({ type: "integer", exclusiveMinimum: 0 });
    expect(list.parameters.find((p) => p.name === "state")!.schema.enum)
      .toEqual(["queued", "running", "retry-wait", "done", "failed", "cancelled", "skipped", "rejected"]);
    expect(document.paths["/jobs/{id}"]!.get!.parameters).toEqual([expect.objectContaining({ name: "id", in: "path", required: true })]);
    expect(Object.keys(document.paths["/jobs/{id}/retry"]!.post!.responses)).toEqual(["202", "404", "409"]);
    expect(document.paths["/series/{series}/rerun"]!.post!.requestBody).toBeDefined();
    expect(document.paths["/health"]!.get!.security).toEqual([]);
    expect(Object.keys(document.paths).sort()).toEqual([
      "/decisions", "/feed", "/health", "/jobs", "/jobs/{id}", "/jobs/{id}/cancel", "/jobs/{id}/preview.png", "/jobs/{id}/retry", "/jobs/{id}/urgent",
      "/metrics", "/models", "/openapi.json", "/pipelines", "/ready", "/schedules", "/schedules/{name}/run", "/series/{series}/rerun",
    ]);
  });
});
