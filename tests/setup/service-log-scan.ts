/**
 * Vitest global setup: gives the run a folder for the logs of every service the integration tests start
 * (.test-output/service-logs/run-<time>-<pid>, git-ignored; tests/helpers/ct-service.ts writes there), and, once every
 * test file has run, scans those logs for the PatientName, PatientID and PatientBirthDate of every real input series
 * (tests/helpers/log-scan.ts; CT_ENHANCE_LOG_SCAN_SERIES names another folder of series). A finding fails the run,
 * naming the field, the series and file:line, never the value.
 *
 * It also gives the run its own temporary folder (TMPDIR, which os.tmpdir() reads and the test workers and the
 * processes they start inherit) and removes it at the end: fixtures written with mkdtemp (SR files for dciodvfy, model
 * folders, spools, the converted head CT) stay out of /tmp after the run, where a few hundred had piled up.
 */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { ctDataRoot } from "../helpers/ct-data.js";
import { describeFindings, logFilesUnder, patientIdentifiersUnder, scanLogs } from "../helpers/log-scan.js";

declare module "vitest" {
  export interface ProvidedContext {
    serviceLogDir: string;
  }
}

const LOG_ROOT = path.resolve(import.meta.dirname, "../../.test-output/service-logs");
/** Runs kept for a person to read; older ones are removed when a run starts. */
const RUNS_KEPT = 5;

export default function setup(project: TestProject): () => void {
  mkdirSync(LOG_ROOT, { recursive: true });
  const runs = readdirSync(LOG_ROOT).filter((name) => name.startsWith("run-")).sort();
  for (const old of runs.slice(0, Math.max(0, runs.length - (RUNS_KEPT - 1)))) rmSync(path.join(LOG_ROOT, old), { recursive: true, force: true });
  const runDir = path.join(LOG_ROOT, `run-${new Date().toISOString().replace(/[:.]/g, "-")}-${process.pid}`);
  mkdirSync(runDir, { recursive: true });
  project.provide("serviceLogDir", runDir);
  const runTemp = mkdtempSync(path.join(tmpdir(), "ct-enhance-tests-"));
  // Others may pass through but not list it: the throw-away PostgreSQL cluster (tests/helpers/postgresql.ts) runs as
  // the postgres user in a folder of its own under this one, which mkdtemp's 0700 would shut it out of.
  chmodSync(runTemp, 0o711);
  process.env.TMPDIR = runTemp;

  return function scanServiceLogs(): void {
    rmSync(runTemp, { recursive: true, force: true });
    const files = logFilesUnder(runDir);
    if (files.length === 0) return;
    const started = Date.now();
    const identifiers = patientIdentifiersUnder(process.env.CT_ENHANCE_LOG_SCAN_SERIES ?? ctDataRoot);
    const findings = scanLogs(files, identifiers);
    const summary = `log scan: ${files.length} service log(s) in ${path.relative(process.cwd(), runDir)}, ` +
      `${identifiers.length} patient identifiers of the input series, ${Date.now() - started} ms`;
    if (findings.length > 0) throw new Error(`${summary}: patient data in the service logs\n${describeFindings(findings)}`);
    process.stdout.write(`${summary}: none found\n`);
  };
}
