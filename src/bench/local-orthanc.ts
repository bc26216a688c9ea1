/**
 * A throw-away Orthanc for the benchmark: the Debian package's binary started from orthanc-config/orthanc.json on free
 * loopback ports with a fresh storage folder (the same way tests/helpers/orthanc.ts starts one for the tests), removed
 * again afterwards.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { PACKAGE_ROOT } from "../config.js";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
    server.once("error", reject);
  });
}

export interface LocalOrthanc {
  url: string;
  dicomwebRoot: string;
  username: string;
  password: string;
  /** Authorization header value (HTTP basic). */
  authorization: string;
  rest<T = unknown>(pathAndQuery: string, init?: RequestInit): Promise<T>;
  /** POST /instances for every file, 4 at a time. */
  upload(files: string[]): Promise<{ seriesIds: string[]; bytes: number }>;
  /** DELETE /series/{id} of the series with this SeriesInstanceUID, if Orthanc has it. */
  deleteSeries(seriesInstanceUID: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startLocalOrthanc(options: { stableAgeSeconds?: number; name?: string } = {}): Promise<LocalOrthanc> {
  const storageDir = mkdtempSync(path.join(tmpdir(), `ct-enhance-${options.name ?? "bench"}-orthanc-`));
  const httpPort = await freePort();
  const dicomPort = await freePort();
  const username = "ct-enhance-bench";
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
    CT_ENHANCE_API_URL: "http://127.0.0.1:1",
  };
  let log = "";
  const child: ChildProcess = spawn("Orthanc", [path.join(PACKAGE_ROOT, "orthanc-config", "orthanc.json")], { env, cwd: storageDir });
  child.stdout?.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
  child.stderr?.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
  child.on("error", (error) => (log += `\ncannot start Orthanc: ${error.message} (install the Debian package 'orthanc')`));

  const rest = async <T>(pathAndQuery: string, init: RequestInit = {}): Promise<T> => {
    const response = await fetch(`${url}${pathAndQuery}`, {
      ...init,
      headers: { Authorization: authorization, ...(init.headers as Record<string, string> | undefined) },
    });
    if (!response.ok) throw new Error(`Orthanc ${response.status} for ${pathAndQuery}: ${await response.text()}`);
    return (await response.json()) as T;
  };

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`Orthanc exited at start:\n${log.slice(-2000)}`);
    try {
      await rest("/system");
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`Orthanc did not answer within 30 s:\n${log.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  return {
    url,
    dicomwebRoot: `${url}/dicom-web`,
    username,
    password,
    authorization,
    rest,
    async upload(files) {
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
    },
    async deleteSeries(seriesInstanceUID) {
      const found = await rest<{ Type: string; ID: string }[]>("/tools/lookup", { method: "POST", body: seriesInstanceUID });
      for (const { ID } of found.filter((f) => f.Type === "Series")) await rest(`/series/${ID}`, { method: "DELETE" });
    },
    async stop() {
      if (child.exitCode === null) {
        await new Promise<void>((resolve) => {
          child.once("exit", () => resolve());
          child.kill("SIGTERM");
          setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
        });
      }
      rmSync(storageDir, { recursive: true, force: true });
    },
  };
}
