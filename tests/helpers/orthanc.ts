/**
 * A real Orthanc for integration tests: the Debian package's binary, started from orthanc-config/orthanc.json on
 * free loopback ports with a fresh storage folder, and stopped (and removed) afterwards.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "../../src/bench/local-orthanc.js";

export const REPO_ROOT = path.resolve(import.meta.dirname, "../..");

/** Free loopback ports: the same helper the benchmark uses for its own Orthancs. */
export { freePort };

export interface TestOrthanc {
  url: string;
  username: string;
  password: string;
  storageDir: string;
  /** GET/POST against Orthanc's REST API with its credentials; JSON answer. */
  rest<T = unknown>(pathAndQuery: string, init?: RequestInit): Promise<T>;
  /** Uploads every .dcm file of a folder (POST /instances, a few at a time); returns the Orthanc series IDs seen. */
  uploadFolder(folder: string): Promise<string[]>;
  stop(): Promise<void>;
  /** Stops and starts again on the same ports and storage (its in-memory unstable-series list is lost). */
  restart(): Promise<void>;
}

export interface OrthancOptions {
  stableAgeSeconds?: number;
  /** Where the Explorer plugin forwards "Run again" (the ct-enhance API; pick its port with freePort() first). */
  ctEnhanceApiUrl?: string;
  /** The bearer token the Explorer plugin sends to the ct-enhance API. */
  ctEnhanceApiToken?: string;
}

export async function startOrthanc(options: OrthancOptions = {}): Promise<TestOrthanc> {
  const storageDir = mkdtempSync(path.join(tmpdir(), "ct-enhance-orthanc-"));
  const httpPort = await freePort();
  const dicomPort = await freePort();
  const username = "ct-enhance-test";
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  const url = `http://127.0.0.1:${httpPort}`;
  const auth = `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
  const env = {
    ...process.env,
    ORTHANC_HTTP_PORT: String(httpPort),
    ORTHANC_DICOM_PORT: String(dicomPort),
    ORTHANC_STORAGE_DIR: storageDir,
    ORTHANC_USERNAME: username,
    ORTHANC_PASSWORD: password,
    ORTHANC_STABLE_AGE: String(options.stableAgeSeconds ?? 2),
    ORTHANC_REMOTE_ACCESS: "false",
    ORTHANC_PYTHON_SCRIPT: path.join(REPO_ROOT, "orthanc-config", "ct-enhance-explorer.py"),
    // The Explorer plugin's forward target: a dead port unless a test runs the panel against a real service.
    CT_ENHANCE_API_URL: options.ctEnhanceApiUrl ?? "http://127.0.0.1:1",
    CT_ENHANCE_API_TOKEN: options.ctEnhanceApiToken ?? "",
  };
  let child: ChildProcess | undefined;
  let log = "";

  const rest = async <T>(pathAndQuery: string, init: RequestInit = {}): Promise<T> => {
    const response = await fetch(`${url}${pathAndQuery}`, {
      ...init,
      headers: { Authorization: auth, ...(init.headers as Record<string, string> | undefined) },
    });
    if (!response.ok) throw new Error(`Orthanc ${response.status} for ${pathAndQuery}: ${await response.text()}`);
    return (await response.json()) as T;
  };

  const launch = async (): Promise<void> => {
    child = spawn("Orthanc", [path.join(REPO_ROOT, "orthanc-config", "orthanc.json")], { env, cwd: storageDir });
    child.stdout?.on("data", (d: Buffer) => (log += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (log += d.toString()));
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`Orthanc exited at start:\n${log.slice(-2000)}`);
      try {
        await rest("/system");
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    throw new Error(`Orthanc did not answer within 30 s:\n${log.slice(-2000)}`);
  };

  const halt = async (): Promise<void> => {
    const running = child;
    if (!running || running.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      running.once("exit", () => resolve());
      running.kill("SIGTERM");
      setTimeout(() => running.kill("SIGKILL"), 10_000).unref();
    });
  };

  await launch();
  return {
    url,
    username,
    password,
    storageDir,
    rest,
    async uploadFolder(folder) {
      const files = readdirSync(folder).filter((f) => f.endsWith(".dcm")).sort();
      const series = new Set<string>();
      let next = 0;
      const uploader = async (): Promise<void> => {
        while (next < files.length) {
          const file = files[next++]!;
          const answer = await rest<{ ParentSeries: string }>("/instances", {
            method: "POST",
            body: readFileSync(path.join(folder, file)),
          });
          series.add(answer.ParentSeries);
        }
      };
      await Promise.all([uploader(), uploader(), uploader(), uploader()]);
      return [...series];
    },
    async stop() {
      await halt();
      rmSync(storageDir, { recursive: true, force: true });
    },
    async restart() {
      await halt();
      await launch();
    },
  };
}
