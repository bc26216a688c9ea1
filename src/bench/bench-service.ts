/**
 * `ct-enhance serve` as the benches run it: the built CLI in its own process beside a local Orthanc, the operator
 * tests' pipeline (the reference Syn-CTA network under safeguards that let any CT through, so every series ends done
 * and its output can be counted), and its memory read from /proc as the kernel counts it (worker threads included).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { PACKAGE_ROOT } from "../config.js";
import { freePort, type LocalOrthanc } from "../orthanc/local-orthanc.js";
import { localServiceEnvironment } from "./service-probe.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface BenchService {
  child: ChildProcess;
  api<T>(route: string): Promise<T>;
  stop(): Promise<void>;
  /** The last 20,000 characters it wrote. */
  log(): string;
}

/** A field of /proc/<pid>/status in MiB (VmRSS: resident now; VmHWM: the peak resident so far); NaN where there is none. */
export function procStatusMiB(pid: number | undefined, field: "VmRSS" | "VmHWM"): number {
  try {
    const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith(`${field}:`));
    return line ? Math.round(Number(line.replace(/\D+/g, "")) / 1024) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** The child's resident set now, MiB. */
export const rssMiB = (pid: number | undefined): number => procStatusMiB(pid, "VmRSS");

export async function startBenchService(
  orthanc: LocalOrthanc,
  settings: { dataDir: string; provider: string; cpuThreads: number; env?: Record<string, string> },
): Promise<BenchService> {
  mkdirSync(settings.dataDir, { recursive: true });
  const port = await freePort();
  const token = `bench-${Math.random().toString(36).slice(2)}`;
  const env = {
    ...localServiceEnvironment(orthanc, { dataDir: settings.dataDir, port, token, stableAgeSeconds: 3 }),
    CT_ENHANCE_PROVIDER: settings.provider,
    CT_ENHANCE_CPU_THREADS: String(settings.cpuThreads),
    CT_ENHANCE_PIPELINES_FILE: path.join(PACKAGE_ROOT, "tests", "fixtures", "pipelines-syncta-only.json"),
    CT_ENHANCE_MODELS_DIR: path.join(PACKAGE_ROOT, "tests", "fixtures", "operator-models"),
    CT_ENHANCE_LOG_LEVEL: "warn",
    ...settings.env,
  };
  return spawnServe(env, port, token, settings.dataDir);
}

/**
 * `ct-enhance serve` started from the built CLI with `env` (its API on `port`, asked with `token`), once its /health
 * answers; stopped with SIGTERM (SIGKILL after 30 s). The benches' one way to start the service, the follower too.
 */
export async function spawnServe(env: NodeJS.ProcessEnv, port: number, token: string, cwd?: string): Promise<BenchService> {
  let output = "";
  const child: ChildProcess = spawn(process.execPath, [path.join(PACKAGE_ROOT, "dist", "cli.js"), "serve"], { env, ...(cwd ? { cwd } : {}) });
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-20_000));
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const apiUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  while (!(await fetch(`${apiUrl}/health`).then((r) => r.ok, () => false))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`ct-enhance did not start:\n${output.slice(-3000)}`);
    await sleep(200);
  }
  const api = async <T>(route: string): Promise<T> => {
    const response = await fetch(`${apiUrl}${route}`, { headers: { Authorization: `Bearer ${token}` } });
    if (!response.ok) throw new Error(`ct-enhance ${response.status} for ${route}: ${await response.text()}`);
    const type = response.headers.get("content-type") ?? "";
    return (type.includes("json") ? await response.json() : await response.text()) as T;
  };
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 30_000).unref();
    });
  };
  return { child, api, stop, log: () => output };
}
