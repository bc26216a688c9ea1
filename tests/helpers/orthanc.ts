/**
 * A real Orthanc for integration tests: the Debian package's binary, started from orthanc-config/orthanc.json on
 * free loopback ports with a fresh storage folder, and stopped (and removed) afterwards; the same launcher the
 * benchmark uses (src/orthanc/local-orthanc.ts).
 */
import path from "node:path";
import { freePort, type LocalOrthanc, type LocalOrthancOptions, startLocalOrthanc } from "../../src/orthanc/local-orthanc.js";

export const REPO_ROOT = path.resolve(import.meta.dirname, "../..");

export { freePort };

export type TestOrthanc = LocalOrthanc;
export type OrthancOptions = Omit<LocalOrthancOptions, "name">;

export function startOrthanc(options: OrthancOptions = {}): Promise<TestOrthanc> {
  return startLocalOrthanc({ ...options, name: "test" });
}
