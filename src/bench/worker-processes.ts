/**
 * Workers of the distributed mode as a site runs them: each the built CLI (`node dist/cli.js worker`) in its own
 * process, configured through the environment, with its own data folder. The distributed test and the workers bench
 * start theirs this way, and kill them (SIGKILL) as a crash would.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PACKAGE_ROOT } from "../config.js";

export interface WorkerProcess {
  name: string;
  pid: number;
  /** Everything it logged so far. */
  log(): string;
  /** SIGTERM (finishes its job first) and wait, or SIGKILL (a crash). */
  stop(how?: "graceful" | "kill"): Promise<void>;
  alive(): boolean;
}

/**
 * Starts `node dist/cli.js worker` named `name` and waits until it says it is ready (models warm, queue joined).
 * `env` carries the Orthanc, Redis and model settings; its output is also appended to `logFile` when given.
 */
export async function startWorkerProcess(name: string, env: NodeJS.ProcessEnv, logFile?: string): Promise<WorkerProcess> {
  const dataDir = mkdtempSync(path.join(tmpdir(), `ct-enhance-worker-${name}-`));
  const child: ChildProcess = spawn(process.execPath, [path.join(PACKAGE_ROOT, "dist", "cli.js"), "worker"], {
    env: { ...env, CT_ENHANCE_WORKER_NAME: name, CT_ENHANCE_DATA_DIR: dataDir }, cwd: dataDir,
  });
  let output = "";
  const keep = (chunk: Buffer): void => {
    const text = chunk.toString();
    output += text;
    if (logFile) appendFileSync(logFile, text);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  const deadline = Date.now() + 120_000;
  while (!output.includes("ct-enhance worker ready")) {
    if (!alive()) throw new Error(`worker ${name} exited at start:\n${output.slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`worker ${name} was not ready within 120 s:\n${output.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    name,
    pid: child.pid!,
    log: () => output,
    alive,
    async stop(how = "graceful") {
      if (alive()) {
        child.kill(how === "kill" ? "SIGKILL" : "SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 60_000).unref();
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
