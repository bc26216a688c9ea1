/**
 * A `ct-enhance serve` process for the benches that watch the service from outside (load-bench.ts, reuse-bench.ts):
 * started beside a local Orthanc, asked through its API, its resident memory read from /proc.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { PACKAGE_ROOT } from "../config.js";
import { freePort, type LocalOrthanc } from "../orthanc/local-orthanc.js";
import { localServiceEnvironment } from "./service-probe.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The child's resident set (worker threads included), MiB, from /proc; NaN where there is none. */
export function rssMiB(pid: number | undefined): number {
  try {
    const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"));
    return line ? Math.round(Number(line.replace(/\D+/g, "")) / 1024) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/**
 * `ct-enhance serve` in its own process beside a local Orthanc, on the operator tests' models folder (the reference
 * Syn-CTA network under safeguards that let any CT through); `env` adds or overrides settings (the pipelines file).
 */
export async function startService(orthanc: LocalOrthanc, options: { provider: string; cpuThreads: number }, dataDir: string,
  env: Record<string, string> = {}) {
  mkdirSync(dataDir, { recursive: true });
  const port = await freePort();
  const token = `load-${Math.random().toString(36).slice(2)}`;
  const serviceEnv = {
    ...localServiceEnvironment(orthanc, { dataDir, port, token, stableAgeSeconds: 3 }),
    CT_ENHANCE_PROVIDER: options.provider,
    CT_ENHANCE_CPU_THREADS: String(options.cpuThreads),
    CT_ENHANCE_MODELS_DIR: path.join(PACKAGE_ROOT, "tests", "fixtures", "operator-models"),
    CT_ENHANCE_LOG_LEVEL: "warn",
    ...env,
  };
  let output = "";
  const child: ChildProcess = spawn(process.execPath, [path.join(PACKAGE_ROOT, "dist", "cli.js"), "serve"], { env: serviceEnv, cwd: dataDir });
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
    return (await response.json()) as T;
  };
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 30_000).unref();
    });
  };
  return { child, api, stop, log: () => output };
}

