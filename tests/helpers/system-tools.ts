/**
 * Integration tests need Orthanc and the DICOM validators from the OS packages (scripts/install-system-deps.sh).
 * In CI their absence fails the run; elsewhere the tests are skipped with a message saying what to install.
 */
import { execFileSync } from "node:child_process";

export function commandExists(command: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** True when the tools are there; false (with a printed reason) outside CI; throws in CI. */
export function requireTools(...commands: string[]): boolean {
  const missing = commands.filter((c) => !commandExists(c));
  if (missing.length === 0) return true;
  const message = `missing ${missing.join(", ")}: run scripts/install-system-deps.sh`;
  if (process.env.CI) throw new Error(`${message} (CI must have them)`);
  console.warn(`skipping: ${message}`);
  return false;
}

export const requireOrthanc = (): boolean => requireTools("Orthanc", "dciodvfy", "dcmdump");
