/**
 * Security (issue 14), against the built service and a real Orthanc with our Explorer plugin: every route but the
 * open ones answers 401 without the token or with a wrong one, a body over the limit 413; the service, given Orthanc's
 * login only inside its URL, logs neither that login nor its API token; and the plugin forwards exactly its allow-list
 * (method and path) to the API, with the token, and nothing else: the API side here is a recorder, so a request that
 * is not forwarded is seen not to arrive.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BODY_LIMIT_BYTES } from "../../src/api/body-limit.js";
import { OPERATOR_TEST_PIPELINES, startService, type TestService } from "../helpers/ct-service.js";
import { freePort, startOrthanc, type TestOrthanc } from "../helpers/orthanc.js";
import { requireOrthanc } from "../helpers/system-tools.js";

const ready = requireOrthanc();
/** README, "The API": the routes answered without the token. */
const OPEN = ["/health", "/ready", "/openapi.json"];
const SERIES = "0a1b2c3d-4e5f6a7b-8c9d0e1f-2a3b4c5d-6e7f8a9b";

interface Recorded { method: string; url: string; authorization: string | undefined }

/** One HTTP request with the path sent as written (fetch would resolve ../ and %2e%2e before sending). */
function raw(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<number> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const request = httpRequest({ hostname, port, method, path, headers }, (response) => {
      response.resume();
      response.on("end", () => resolve(response.statusCode ?? 0));
    });
    request.on("error", reject);
    request.end(body);
  });
}

describe.runIf(ready)("security: the API's guards and the Explorer plugin's allow-list (real Orthanc, built service)", () => {
  let orthanc: TestOrthanc;
  let service: TestService;
  let recorder: Server;
  const recorded: Recorded[] = [];
  const pluginToken = `plugin-${Math.random().toString(36).slice(2)}`;

  beforeAll(async () => {
    const recorderPort = await freePort();
    recorder = createServer((request, response) => {
      const headers: IncomingHttpHeaders = request.headers;
      recorded.push({ method: request.method ?? "", url: request.url ?? "", authorization: headers.authorization });
      request.resume();
      response.setHeader("Content-Type", "application/json");
      if (request.url === "/jobs/8") response.statusCode = 409; // an API refusal the plugin must pass on as it is
      response.end(response.statusCode === 409 ? '{"error":"refused"}' : "[]");
    });
    await new Promise<void>((resolve) => recorder.listen(recorderPort, "127.0.0.1", resolve));
    orthanc = await startOrthanc({ ctEnhanceApiUrl: `http://127.0.0.1:${recorderPort}`, ctEnhanceApiToken: pluginToken });
    const login = `${encodeURIComponent(orthanc.username)}:${encodeURIComponent(orthanc.password)}`;
    service = await startService(orthanc, {
      ...OPERATOR_TEST_PIPELINES,
      // Orthanc's login only inside its URL: the service must take it from there and show it nowhere.
      CT_ENHANCE_ORTHANC_URL: orthanc.url.replace("://", `://${login}@`),
      CT_ENHANCE_ORTHANC_USERNAME: "",
      CT_ENHANCE_ORTHANC_PASSWORD: "",
    });
  }, 180_000);

  afterAll(async () => {
    await service?.stop();
    service?.remove();
    await orthanc?.stop();
    await new Promise((resolve) => recorder?.close(resolve));
  });

  it("answers 401 without the token or with a wrong one on every route its description lists, but the open ones", async () => {
    const description = (await (await fetch(`${service.apiUrl}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { security?: unknown[] }>>;
    };
    const operations = Object.entries(description.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({ path, method, open: Array.isArray(operation.security) && operation.security.length === 0 })));
    expect(operations.filter((o) => o.open).map((o) => o.path).sort()).toEqual([...OPEN].sort());
    const guarded = operations.filter((o) => !o.open);
    expect(guarded.length).toBeGreaterThanOrEqual(12);
    for (const { path, method } of guarded) {
      const url = `${service.apiUrl}${path.replace(/\{[A-Za-z]+\}/g, "1")}`;
      for (const headers of [{}, { Authorization: "Bearer wrong" } as Record<string, string>, { Authorization: `Bearer ${service.token}-` }, { Authorization: service.token }]) {
        const response = await fetch(url, { method: method.toUpperCase(), headers });
        expect(response.status, `${method} ${path}`).toBe(401);
      }
    }
    for (const path of OPEN) expect((await fetch(`${service.apiUrl}${path}`)).status, path).toBe(200);
  });

  it("answers 413 to a body over the limit, after the token (401 without it)", async () => {
    const body = JSON.stringify({ requestedBy: "x".repeat(BODY_LIMIT_BYTES) });
    const post = (headers: Record<string, string>) => fetch(`${service.apiUrl}/series/${SERIES}/rerun`, {
      method: "POST", body, headers: { "Content-Type": "application/json", ...headers },
    });
    expect((await post({ Authorization: `Bearer ${service.token}` })).status).toBe(413);
    expect((await post({})).status).toBe(401);
  });

  it("reaches Orthanc with the login from its URL, and logs neither the login nor the API token", async () => {
    expect((await fetch(`${service.apiUrl}/ready`)).status).toBe(200);
    const log = service.log();
    expect(log).toMatch(/ct-enhance serving/);
    expect(log.includes(orthanc.password), "Orthanc's password is in the service log").toBe(false);
    expect(log.includes(service.token), "the API token is in the service log").toBe(false);
    expect(log).toContain(`"orthanc":"${orthanc.url}"`);
  });

  it("the plugin forwards its five routes with the token, passes the API's refusals on, and forwards nothing else", async () => {
    const asOrthancUser = { Authorization: orthanc.authorization };
    const allowed: [string, string, string][] = [
      ["GET", "/ct-enhance/pipelines", "GET /pipelines"],
      ["GET", `/ct-enhance/series/${SERIES}/jobs`, `GET /jobs?orthancSeries=${SERIES}`],
      ["POST", `/ct-enhance/series/${SERIES}/rerun`, `POST /series/${SERIES}/rerun`],
      ["GET", "/ct-enhance/jobs/7", "GET /jobs/7"],
      ["GET", "/ct-enhance/jobs/7/preview.png?v=1", "GET /jobs/7/preview.png"],
    ];
    for (const [method, path, forwarded] of allowed) {
      recorded.length = 0;
      const status = await raw(orthanc.url, method, path, { ...asOrthancUser, "Content-Type": "application/json" }, method === "POST" ? "{}" : undefined);
      expect(status, path).toBe(200);
      expect(recorded.map((r) => `${r.method} ${r.url}`), path).toEqual([forwarded]);
      expect(recorded[0]!.authorization).toBe(`Bearer ${pluginToken}`);
    }

    recorded.length = 0;
    expect(await raw(orthanc.url, "GET", "/ct-enhance/jobs/8", asOrthancUser), "the API's 409 passed on").toBe(409);
    expect(recorded.map((r) => r.url)).toEqual(["/jobs/8"]);

    const rerun = `/ct-enhance/series/${SERIES}/rerun`;
    const refused: [number, string, string, string?][] = [
      [404, "GET", "/ct-enhance/metrics"], [404, "GET", "/ct-enhance/jobs"], [404, "GET", "/ct-enhance/schedules"],
      [404, "GET", "/ct-enhance/decisions"], [404, "POST", "/ct-enhance/jobs/7/retry"], [404, "POST", "/ct-enhance/jobs/7/cancel"],
      [404, "POST", "/ct-enhance/schedules/retention/run"], [404, "GET", "/ct-enhance/jobs/7/../../metrics"],
      [404, "GET", "/ct-enhance/jobs/7%2F..%2F..%2Fmetrics"], [404, "GET", "/ct-enhance/jobs/7/%2e%2e/retry"],
      [404, "GET", "/ct-enhance/series/not-an-orthanc-id/jobs"], [404, "GET", `/ct-enhance/series/${SERIES}/jobs/extra`],
      [405, "GET", rerun], [405, "PUT", rerun, "{}"], [405, "POST", "/ct-enhance/pipelines", "{}"], [405, "DELETE", "/ct-enhance/jobs/7"],
      [405, "POST", "/ct-enhance/jobs/7", "{}"], [413, "POST", rerun, JSON.stringify({ pipeline: "x".repeat(5000) })],
      [400, "POST", rerun, "not json"], [400, "POST", rerun, "[1, 2]"],
    ];
    recorded.length = 0;
    for (const [expected, method, path, body] of refused) {
      const status = await raw(orthanc.url, method, path, { ...asOrthancUser, "Content-Type": "application/json" }, body);
      expect(status, `${method} ${path}`).toBe(expected);
      expect(recorded.map((r) => `${r.method} ${r.url}`), `${method} ${path} was forwarded`).toEqual([]);
    }
    // And without Orthanc's login, not even an allowed route is forwarded.
    expect(await raw(orthanc.url, "GET", "/ct-enhance/pipelines")).toBe(401);
    expect(recorded).toEqual([]);
  });
});
