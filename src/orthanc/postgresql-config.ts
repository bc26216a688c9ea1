/**
 * Orthanc with its index and its storage in PostgreSQL (Debian `orthanc-postgresql`, plugin 4.0): the configuration
 * folder that starts it. Orthanc merges every .json file of a folder, but refuses a section defined in two files, so
 * the plugins cannot be added by a second file beside ours: the folder holds a copy of orthanc-config/orthanc.json
 * with the two PostgreSQL plugins put first in its "Plugins" list, and orthanc-config/postgresql.json (the
 * "PostgreSQL" section, filled from ORTHANC_POSTGRESQL_* variables when Orthanc reads it). docker/orthanc.Dockerfile
 * makes the same folder with sed; tests/unit/site-containers.test.ts keeps the two in step.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { PACKAGE_ROOT } from "../config.js";

/** Where Debian's orthanc-postgresql puts its two plugins. */
export const POSTGRESQL_PLUGINS = [
  "/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so",
  "/usr/share/orthanc/plugins/libOrthancPostgreSQLStorage.so",
] as const;

/** Where Orthanc finds its PostgreSQL database; Orthanc reads these from the environment (orthanc-config/postgresql.json). */
export interface OrthancPostgreSQL {
  host: string;
  port: number;
  database: string;
  username: string;
  password: string;
}

const PLUGINS_LIST = /"Plugins"\s*:\s*\[/g;

/** orthanc.json's text with the PostgreSQL plugins first in its "Plugins" list (the text is not JSON before Orthanc fills its ${...}). */
export function withPostgreSQLPlugins(orthancJson: string): string {
  const lists = orthancJson.match(PLUGINS_LIST) ?? [];
  if (lists.length !== 1) throw new Error(`orthanc.json must have one "Plugins" list to add PostgreSQL to; it has ${lists.length}`);
  const entries = POSTGRESQL_PLUGINS.map((plugin) => `\n    "${plugin}",`).join("");
  return orthancJson.replace(PLUGINS_LIST, (list) => `${list}${entries}`);
}

/** Writes the configuration folder of an Orthanc on PostgreSQL into `folder`; returns it, for Orthanc's command line. */
export function writePostgreSQLConfigFolder(folder: string): string {
  const ours = path.join(PACKAGE_ROOT, "orthanc-config");
  mkdirSync(folder, { recursive: true });
  writeFileSync(path.join(folder, "orthanc.json"), withPostgreSQLPlugins(readFileSync(path.join(ours, "orthanc.json"), "utf8")));
  writeFileSync(path.join(folder, "postgresql.json"), readFileSync(path.join(ours, "postgresql.json")));
  return folder;
}

/** The environment Orthanc fills orthanc-config/postgresql.json from. */
export function postgreSQLEnvironment(database: OrthancPostgreSQL): Record<string, string> {
  return {
    ORTHANC_POSTGRESQL_HOST: database.host,
    ORTHANC_POSTGRESQL_PORT: String(database.port),
    ORTHANC_POSTGRESQL_DATABASE: database.database,
    ORTHANC_POSTGRESQL_USERNAME: database.username,
    ORTHANC_POSTGRESQL_PASSWORD: database.password,
  };
}
