/**
 * A throw-away Orthanc on this machine: the Debian package's binary started from orthanc-config/orthanc.json on
 * free loopback ports with a fresh storage folder, removed again when stopped. The benchmark and the integration
 * tests start theirs this way. With `postgresql`, its index and storage live in that database instead (the scale-out
 * PACS of a site; src/orthanc/postgresql-config.ts).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { PACKAGE_ROOT } from "../config.js";
import { type OrthancPostgreSQL, postgreSQLEnvironment, writePostgreSQLConfigFolder } from "./postgresql-config.js";

/** Ports this process has handed out: the OS may give a port just released again, and two callers would share it. */
const handedOut = new Set<number>();

/**
 * A loopback port free now, never one this process handed out before: two calls in a row once gave Orthanc the same
 * port for HTTP and DICOM (it exited, "already in use").
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.listen(0, "127.0.0.1", () => {
        const address = server.address();
        const found = typeof address === "object" && address ? address.port : 0;
        server.close(() => resolve(found));
      });
      server.once("error", reject);
    });
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

export interface LocalOrthancOptions {
  /** Orthanc's StableAge, seconds (default 2). */
  stableAgeSeconds?: number;
  /** Names the storage folder (ct-enhance-<name>-orthanc-*). */
  name?: string;
  /** Where the Explorer plugin forwards "Run again" (the ct-enhance API); a dead port unless given. */
  ctEnhanceApiUrl?: string;
  /** The bearer token the Explorer plugin sends to the ct-enhance API. */
  ctEnhanceApiToken?: string;
  /** A folder prepared by src/tools/ohif-prepare.ts: the Explorer plugin then serves the OHIF Viewer at /ohif/. */
  ohifDir?: string;
  /**
   * Index and storage in this PostgreSQL database (Debian orthanc-postgresql) instead of SQLite and files. The database
   * outlives stop(): its owner drops it, and resume({ clearStorage }) does not empty it.
   */
  postgresql?: OrthancPostgreSQL;
}

export interface LocalOrthanc {
  url: string;
  dicomwebRoot: string;
  username: string;
  password: string;
  /** Authorization header value (HTTP basic). */
  authorization: string;
  storageDir: string;
  /** REST call with its credentials; JSON answer. */
  rest<T = unknown>(pathAndQuery: string, init?: RequestInit): Promise<T>;
  /** REST call with its credentials; the answer's bytes (an instance's file, say). */
  restBytes(pathAndQuery: string): Promise<Uint8Array>;
  /** POST /instances for every file, 4 at a time; the Orthanc series IDs seen and the bytes sent. */
  upload(files: string[]): Promise<{ seriesIds: string[]; bytes: number }>;
  /** upload() of every .dcm file of a folder; the Orthanc series IDs seen. */
  uploadFolder(folder: string): Promise<string[]>;
  /** DELETE /series/{id} of the series with this SeriesInstanceUID, if Orthanc has it. */
  deleteSeries(seriesInstanceUID: string): Promise<void>;
  stop(): Promise<void>;
  /** Stops and starts again on the same ports and storage (its in-memory unstable-series list is lost). */
  restart(): Promise<void>;
  /** Stops it and keeps its storage (an outage): SIGTERM, or SIGKILL for a crash that drops its connections at once. */
  halt(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  /** Starts it again after halt() on the same ports; `clearStorage` empties the storage folder first (a new database). */
  resume(options?: { clearStorage?: boolean }): Promise<void>;
}

export async function startLocalOrthanc(options: LocalOrthancOptions = {}): Promise<LocalOrthanc> {
  const storageDir = mkdtempSync(path.join(tmpdir(), `ct-enhance-${options.name ?? "local"}-orthanc-`));
  const httpPort = await freePort();
  const dicomPort = await freePort();
  const username = "ct-enhance-local";
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  const url = `http://127.0.0.1:${httpPort}`;
  const authorization = `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
  const env = {
    ...process.env,
    ORTHANC_HTTP_PORT: String(httpPort),
    ORTHANC_DICOM_PORT: String(dicomPort),
    ORTHANC_STORAGE_DIR: storageDir,
    ORTHANC_USERNAME: username,
    ORTHANC_PASSWORD: password,
    ORTHANC_STABLE_AGE: String(options.stableAgeSeconds ?? 2),
    ORTHANC_REMOTE_ACCESS: "false",
    ORTHANC_PYTHON_SCRIPT: path.join(PACKAGE_ROOT, "orthanc-config", "ct-enhance-explorer.py"),
    CT_ENHANCE_API_URL: options.ctEnhanceApiUrl ?? "http://127.0.0.1:1",
    CT_ENHANCE_API_TOKEN: options.ctEnhanceApiToken ?? "",
    CT_ENHANCE_OHIF_DIR: options.ohifDir ?? "",
    ...(options.postgresql ? postgreSQLEnvironment(options.postgresql) : {}),
  };
  // Orthanc reads one file, or every .json file of a folder: the PostgreSQL plugins need the folder.
  const configFolder = options.postgresql
    ? writePostgreSQLConfigFolder(mkdtempSync(path.join(tmpdir(), `ct-enhance-${options.name ?? "local"}-orthanc-config-`)))
    : undefined;
  const configPath = configFolder ?? path.join(PACKAGE_ROOT, "orthanc-config", "orthanc.json");
  let child: ChildProcess | undefined;
  let log = "";

  const answer = async (pathAndQuery: string, init: RequestInit = {}): Promise<Response> => {
    const response = await fetch(`${url}${pathAndQuery}`, {
      ...init,
      headers: { Authorization: authorization, ...(init.headers as Record<string, string> | undefined) },
    });
    if (!response.ok) throw new Error(`Orthanc ${response.status} for ${pathAndQuery}: ${await response.text()}`);
    return response;
  };
  const rest = async <T>(pathAndQuery: string, init: RequestInit = {}): Promise<T> => (await (await answer(pathAndQuery, init)).json()) as T;

  const launch = async (): Promise<void> => {
    const started = spawn("Orthanc", [configPath], { env, cwd: storageDir });
    child = started;
    started.stdout?.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
    started.stderr?.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
    started.on("error", (error) => (log += `\ncannot start Orthanc: ${error.message} (install the Debian package 'orthanc')`));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (started.exitCode !== null) throw new Error(`Orthanc exited at start:\n${log.slice(-2000)}`);
      try {
        await rest("/system");
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`Orthanc did not answer within 30 s:\n${log.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };

  const halt = async (signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> => {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      running.once("exit", () => resolve());
      running.kill(signal);
      setTimeout(() => running.kill("SIGKILL"), 10_000).unref();
    });
  };

  const upload = async (files: string[]): Promise<{ seriesIds: string[]; bytes: number }> => {
    if (files.length === 0) throw new Error("no DICOM files to upload");
    const series = new Set<string>();
    let bytes = 0;
    let next = 0;
    const uploader = async (): Promise<void> => {
      while (next < files.length) {
        const body = readFileSync(files[next++]!);
        bytes += body.length;
        const answer = await rest<{ ParentSeries: string }>("/instances", { method: "POST", body });
        series.add(answer.ParentSeries);
      }
    };
    await Promise.all([uploader(), uploader(), uploader(), uploader()]);
    return { seriesIds: [...series], bytes };
  };

  await launch();
  return {
    url,
    dicomwebRoot: `${url}/dicom-web`,
    username,
    password,
    authorization,
    storageDir,
    rest,
    restBytes: async (pathAndQuery) => new Uint8Array(await (await answer(pathAndQuery)).arrayBuffer()),
    upload,
    async uploadFolder(folder) {
      const files = readdirSync(folder).filter((f) => f.endsWith(".dcm")).sort().map((f) => path.join(folder, f));
      return (await upload(files)).seriesIds;
    },
    async deleteSeries(seriesInstanceUID) {
      const found = await rest<{ Type: string; ID: string }[]>("/tools/lookup", { method: "POST", body: seriesInstanceUID });
      for (const { ID } of found.filter((f) => f.Type === "Series")) await rest(`/series/${ID}`, { method: "DELETE" });
    },
    async stop() {
      await halt();
      rmSync(storageDir, { recursive: true, force: true });
      if (configFolder) rmSync(configFolder, { recursive: true, force: true });
    },
    async restart() {
      await halt();
      await launch();
    },
    halt,
    async resume(resumeOptions = {}) {
      if (resumeOptions.clearStorage) {
        for (const entry of readdirSync(storageDir)) rmSync(path.join(storageDir, entry), { recursive: true, force: true });
      }
      await launch();
    },
  };
}
