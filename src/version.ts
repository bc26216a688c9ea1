/** ct-enhance's own version, as package.json says: written into Contributing Equipment of every output. */
import { readFileSync } from "node:fs";
import path from "node:path";
import { PACKAGE_ROOT } from "./config.js";

export const SOFTWARE_NAME = "ct-enhance";
export const SOFTWARE_VERSION: string = (
  JSON.parse(readFileSync(path.join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string }
).version;
