/**
 * A throw-away Redis on this machine for the distributed mode's test and bench: the Debian package's `redis-server`
 * on a free loopback port, its files in a fresh folder, with no snapshot and no append-only file (nothing here must
 * outlive the run; a site's Redis must keep both: README "Scaling out"). Removed again when stopped.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { freePort } from "../orthanc/local-orthanc.js";

export interface LocalRedis {
  url: string;
  stop(): Promise<void>;
}

export async function startLocalRedis(): Promise<LocalRedis> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), "ct-enhance-redis-"));
  const child: ChildProcess = spawn("redis-server", [
    "--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no", "--protected-mode", "yes",
  ], { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  child.stdout?.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  child.stderr?.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  child.on("error", (error) => (log += `\ncannot start redis-server: ${error.message} (install the Debian package 'redis-server')`));
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited at start:\n${log}`);
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on("error", () => undefined);
    try {
      await probe.connect();
      if ((await probe.ping()) === "PONG") break;
    } catch {
      if (Date.now() > deadline) throw new Error(`redis-server did not answer within 15 s:\n${log}`);
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      probe.disconnect();
    }
  }
  return {
    url,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        await new Promise<void>((resolve) => {
          child.once("exit", () => resolve());
          child.kill("SIGTERM");
          setTimeout(() => child.kill("SIGKILL"), 5_000).unref();
        });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
