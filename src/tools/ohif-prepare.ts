/**
 * Prepares the OHIF Viewer that Orthanc serves under /ohif/ (orthanc-config/ct-enhance-explorer.py):
 * the prebuilt `dist/` of the npm package `@ohif/app` at a pinned version, fetched with `npm pack` from the npm
 * registry (no build, no dependency tree: the package's dist is complete), checked against the pinned sha512,
 * unpacked into `<repo>/.ohif/<version>/`, and moved from the site root to /ohif/.
 *
 * OHIF's build assumes it sits at "/": index.html names its files "/app.bundle...", and the bundles load their chunks
 * from `__webpack_require__.p = "/"`. Orthanc's root belongs to Orthanc, so those become "/ohif/" here; OHIF's own
 * router is told the same through `routerBasename` in our app-config.js (served by the plugin, not from this folder).
 *
 * Usage: node dist/tools/ohif-prepare.js [--dir <folder>]   prints the prepared folder; does nothing when it is ready.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const OHIF_VERSION = "3.13.2";
/** `npm view @ohif/app@3.13.2 dist.integrity`: the tarball is 50 MB, its dist 204 MB unpacked. */
export const OHIF_INTEGRITY = "sha512-WZdxmpmG7rqFgW9ZJLcbgr3XCtLi1KDNPoMaeY5PPe6j4G4fjEjjkycZM6C6Zk2F87BKxFfpq+jd5xXZB9E8EA==";
/** The path Orthanc serves OHIF under; the plugin and app-config.js say the same. */
export const OHIF_BASE_PATH = "/ohif/";
const READY_MARKER = ".ct-enhance-prepared";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const DEFAULT_OHIF_ROOT = path.join(REPO_ROOT, ".ohif");

export function ohifDistFolder(root = DEFAULT_OHIF_ROOT): string {
  return path.join(root, OHIF_VERSION);
}

/** Rewrites the root-relative names of an OHIF build so it works under `basePath`; returns the files changed. */
export function moveOhifBuild(distFolder: string, basePath = OHIF_BASE_PATH): string[] {
  const changed: string[] = [];
  const indexFile = path.join(distFolder, "index.html");
  const index = readFileSync(indexFile, "utf8");
  const movedIndex = index
    .replace(/(href|src)="\/(?!\/)/g, `$1="${basePath}`)
    .replace(/window\.PUBLIC_URL="\/"/g, `window.PUBLIC_URL="${basePath}"`);
  if (movedIndex !== index) {
    writeFileSync(indexFile, movedIndex);
    changed.push("index.html");
  }
  for (const name of readdirSync(distFolder).filter((n) => n.endsWith(".js"))) {
    const file = path.join(distFolder, name);
    const text = readFileSync(file, "utf8");
    const moved = text.replace(/__webpack_require__\.p = "\/";/g, `__webpack_require__.p = "${basePath}";`);
    if (moved !== text) {
      writeFileSync(file, moved);
      changed.push(name);
    }
  }
  if (!changed.includes("index.html") || !changed.some((n) => n.startsWith("app.bundle."))) {
    throw new Error(`OHIF ${OHIF_VERSION}'s build does not look as expected (index.html or app.bundle not moved to ${basePath}): ` +
      `check moveOhifBuild against the new version`);
  }
  return changed;
}

/** Fetches, checks, unpacks and moves OHIF into `<root>/<version>` unless it is there already; returns that folder. */
export function prepareOhif(root = DEFAULT_OHIF_ROOT, log: (line: string) => void = () => undefined): string {
  const target = ohifDistFolder(root);
  if (existsSync(path.join(target, READY_MARKER))) return target;
  mkdirSync(root, { recursive: true });
  const work = mkdtempSync(path.join(root, "download-"));
  try {
    log(`fetching @ohif/app@${OHIF_VERSION} from the npm registry (50 MB)...`);
    const packed = execFileSync("npm", ["pack", `@ohif/app@${OHIF_VERSION}`, "--pack-destination", work, "--silent"], {
      encoding: "utf8", stdio: ["ignore", "pipe", "pipe"],
    }).trim().split("\n").at(-1)!;
    const tarball = path.join(work, packed);
    const integrity = `sha512-${createHash("sha512").update(readFileSync(tarball)).digest("base64")}`;
    if (integrity !== OHIF_INTEGRITY) throw new Error(`@ohif/app@${OHIF_VERSION}: tarball integrity ${integrity}, expected ${OHIF_INTEGRITY}`);
    execFileSync("tar", ["xzf", tarball, "-C", work]);
    const dist = path.join(work, "package", "dist");
    moveOhifBuild(dist);
    writeFileSync(path.join(dist, READY_MARKER), `@ohif/app@${OHIF_VERSION} ${OHIF_INTEGRITY} moved to ${OHIF_BASE_PATH}\n`);
    rmSync(target, { recursive: true, force: true });
    renameSync(dist, target);
    log(`OHIF ${OHIF_VERSION} ready in ${target}`);
    return target;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf("--dir");
  const root = at > 0 && process.argv[at + 1] ? path.resolve(process.argv[at + 1]!) : DEFAULT_OHIF_ROOT;
  console.log(prepareOhif(root, (line) => console.error(line)));
}
