/**
 * ct-enhance as a user runs it: the built CLI (`node dist/cli.js serve`) in its own process, configured through the
 * environment, pointed at a test Orthanc. Tests only watch it through Orthanc and its API. Everything it writes is
 * also kept in the run's service-log folder (tests/setup/service-log-scan.ts), which is scanned for patient data.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect, inject } from "vitest";
import { freePort, REPO_ROOT, type TestOrthanc } from "./orthanc.js";
import { localServiceEnvironment } from "../../src/bench/service-probe.js";

/**
 * One pipeline (any CT without contrast in its header -> the reference Syn-CTA network under safeguards that let any
 * CT through): the tests of the operator's API, the panel, reconcile and the streamed store want exactly one job per
 * series that ends done, whatever the reference model's checks would say of a 24-slice subset.
 */
export const OPERATOR_TEST_PIPELINES = {
  CT_ENHANCE_PIPELINES_FILE: path.join(REPO_ROOT, "tests", "fixtures", "pipelines-syncta-only.json"),
  CT_ENHANCE_MODELS_DIR: path.join(REPO_ROOT, "tests", "fixtures", "operator-models"),
};

export interface TestService {
  apiUrl: string;
  dataDir: string;
  token: string;
  api<T = unknown>(pathAndQuery: string, init?: RequestInit): Promise<T>;
  /** Everything it logged so far. */
  log(): string;
  /** SIGTERM and wait (graceful), or SIGKILL (a crash). */
  stop(how?: "graceful" | "kill"): Promise<void>;
  /** Starts it again on the same data folder and port; `env` replaces variables of its first start (a mended setting). */
  start(env?: Record<string, string>): Promise<void>;
  remove(): void;
}

export async function startService(orthanc: TestOrthanc, extraEnv: Record<string, string> = {}): Promise<TestService> {
  const dataDir = mkdtempSync(path.join(tmpdir(), "ct-enhance-data-"));
  // A caller may fix the port (e.g. Orthanc's Explorer plugin must know it first) and the token through extraEnv.
  const port = extraEnv.CT_ENHANCE_PORT ? Number(extraEnv.CT_ENHANCE_PORT) : await freePort();
  const token = extraEnv.CT_ENHANCE_API_TOKEN ?? `token-${Math.random().toString(36).slice(2)}`;
  const apiUrl = `http://127.0.0.1:${port}`;
  const env = {
    ...localServiceEnvironment(orthanc, { dataDir, port, token, stableAgeSeconds: 3 }),
    CT_ENHANCE_RETRY_DELAY_SECONDS: "2",
    CT_ENHANCE_PROVIDER: "cpu",
    // The models folder's pipelines file is the default; operator tests pass SYNTHESIS_ONLY_PIPELINES for one job a series.
    ...extraEnv,
  };
  let child: ChildProcess | undefined;
  let output = "";
  const logFile = serviceLogFile(port);
  const keep = (chunk: Buffer): void => {
    const text = chunk.toString();
    output += text;
    appendFileSync(logFile, text);
  };

  const api = async <T>(pathAndQuery: string, init: RequestInit = {}): Promise<T> => {
    const response = await fetch(`${apiUrl}${pathAndQuery}`, {
      ...init,
      headers: { Authorization: `Bearer ${token}`, ...(init.headers as Record<string, string> | undefined) },
    });
    if (!response.ok) throw new Error(`ct-enhance ${response.status} for ${pathAndQuery}: ${await response.text()}`);
    return (await response.json()) as T;
  };

  const start = async (changed: Record<string, string> = {}): Promise<void> => {
    Object.assign(env, changed);
    child = spawn(process.execPath, [path.join(REPO_ROOT, "dist", "cli.js"), "serve"], { env, cwd: dataDir });
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`ct-enhance exited at start:\n${output.slice(-3000)}`);
      try {
        // 503 is the process answering too: Orthanc unreachable or refusing its login (a test may want just that).
        const response = await fetch(`${apiUrl}/health`);
        if (response.ok || response.status === 503) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`ct-enhance did not answer /health within 60 s:\n${output.slice(-3000)}`);
  };

  await start();
  return {
    apiUrl,
    dataDir,
    token,
    api,
    log: () => output,
    start,
    async stop(how = "graceful") {
      const running = child;
      if (!running || running.exitCode !== null || running.signalCode !== null) return; // already gone (a kill leaves exitCode null)
      await new Promise<void>((resolve) => {
        running.once("exit", () => resolve());
        running.kill(how === "kill" ? "SIGKILL" : "SIGTERM");
        setTimeout(() => running.kill("SIGKILL"), 60_000).unref();
      });
    },
    remove() {
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Where this service's output is kept: the run's folder (or .test-output/service-logs/adhoc), named after the test file. */
function serviceLogFile(port: number): string {
  const folder = inject("serviceLogDir") ?? path.join(REPO_ROOT, ".test-output", "service-logs", "adhoc");
  mkdirSync(folder, { recursive: true });
  const testFile = path.basename(expect.getState().testPath ?? "service", ".test.ts");
  return path.join(folder, `${testFile}-${port}-${Date.now()}.log`);
}

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs` with `what`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, service?: TestService): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  const tail = service ? `\nservice log tail:\n${service.log().slice(-4000)}` : "";
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ""}${tail}`);
}
