/**
 * A real, throw-away PostgreSQL for integration tests: Debian's `postgresql` binaries make a cluster in a temp folder
 * (initdb), serve it on a free loopback port with password (SCRAM) logins, and create one database owned by a plain
 * role, as a site gives Orthanc; stop() shuts it down and removes the folder. The package's own cluster and service
 * are never used. PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` OS user the
 * package creates (runuser); as anyone else, to that user.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { POSTGRESQL_PLUGINS, type OrthancPostgreSQL } from "../../src/orthanc/postgresql-config.js";
import { freePort } from "./orthanc.js";

export interface TestPostgreSQL {
  /** The database Orthanc is given, and its owner's login. */
  database: OrthancPostgreSQL;
  /** Runs SQL in that database as its owner (psql); the rows, one a line, columns split by '|'. */
  query(sql: string): string;
  stop(): void;
}

const POSTGRESQL_LIB = "/usr/lib/postgresql";

/** The bin folder of the newest PostgreSQL installed from Debian's packages, or undefined. */
export function postgreSQLBinaries(): string | undefined {
  if (!existsSync(POSTGRESQL_LIB)) return undefined;
  const versions = readdirSync(POSTGRESQL_LIB).filter((v) => existsSync(path.join(POSTGRESQL_LIB, v, "bin", "initdb")));
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  return newest ? path.join(POSTGRESQL_LIB, newest, "bin") : undefined;
}

/** True when PostgreSQL and Orthanc's PostgreSQL plugins are installed; false with a message outside CI; throws in CI. */
export function requirePostgreSQL(): boolean {
  const missing = [
    ...(postgreSQLBinaries() ? [] : ["postgresql (initdb)"]),
    ...POSTGRESQL_PLUGINS.filter((plugin) => !existsSync(plugin)).map((plugin) => `orthanc-postgresql (${path.basename(plugin)})`),
  ];
  if (missing.length === 0) return true;
  const message = `missing ${missing.join(", ")}: run scripts/install-system-deps.sh`;
  if (process.env.CI) throw new Error(`${message} (CI must have them)`);
  console.warn(`skipping: ${message}`);
  return false;
}

const secret = (): string => `pw${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;

export async function startPostgreSQL(): Promise<TestPostgreSQL> {
  const bin = postgreSQLBinaries();
  if (!bin) throw new Error("PostgreSQL is not installed: run scripts/install-system-deps.sh");
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? { uid: Number(execFileSync("id", ["-u", "postgres"]).toString()), gid: Number(execFileSync("id", ["-g", "postgres"]).toString()) } : undefined;
  const folder = mkdtempSync(path.join(tmpdir(), "ct-enhance-test-postgresql-"));
  const dataDir = path.join(folder, "data");
  const port = await freePort();
  const superuser = { name: "ct_enhance_admin", password: secret() };
  const database: OrthancPostgreSQL = { host: "127.0.0.1", port, database: "orthanc", username: "orthanc", password: secret() };

  // Runs a PostgreSQL program as the cluster's owner; its output, or an error carrying what it printed.
  const run = (program: string, args: string[], env: Record<string, string> = {}): string => {
    const [command, commandArgs] = asRoot ? ["runuser", ["-u", "postgres", "--", path.join(bin, program), ...args]] : [path.join(bin, program), args];
    const result = spawnSync(command, commandArgs, { env: { ...process.env, ...env }, encoding: "utf8", cwd: folder });
    if (result.status !== 0) throw new Error(`${program} failed (${result.status ?? result.signal}): ${result.stderr || result.stdout || result.error?.message}`);
    return result.stdout;
  };

  const passwordFile = path.join(folder, "superuser-password");
  writeFileSync(passwordFile, superuser.password, { mode: 0o600 });
  if (owner) {
    chownSync(folder, owner.uid, owner.gid);
    chownSync(passwordFile, owner.uid, owner.gid);
  }
  chmodSync(folder, 0o700);
  const asSuperuser = { PGPASSWORD: superuser.password };
  try {
    run("initdb", ["-D", dataDir, "-U", superuser.name, `--pwfile=${passwordFile}`, "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-instructions"]);
    rmSync(passwordFile);
    // Loopback TCP only; the Unix socket in the folder, not in /var/run/postgresql (the package's
    // cluster's place); fsync off, as nothing of a throw-away cluster must survive a power cut.
    run("pg_ctl", ["-D", dataDir, "-l", path.join(folder, "postgresql.log"), "-w", "-t", "60", "start", "-o", `-p ${port} -k ${folder} -c listen_addresses=127.0.0.1 -c fsync=off`]);
    const psqlAsSuperuser = ["-h", "127.0.0.1", "-p", String(port), "-U", superuser.name, "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c"];
    run("psql", [...psqlAsSuperuser, `CREATE ROLE ${database.username} LOGIN PASSWORD '${database.password}'`], asSuperuser);
    run("psql", [...psqlAsSuperuser, `CREATE DATABASE ${database.database} OWNER ${database.username} ENCODING 'UTF8'`], asSuperuser);
  } catch (error) {
    stopCluster();
    throw error;
  }

  function stopCluster(): void {
    if (existsSync(path.join(dataDir, "postmaster.pid"))) {
      try {
        run("pg_ctl", ["-D", dataDir, "-m", "fast", "-w", "stop"]);
      } catch {
        // already gone; the folder goes anyway
      }
    }
    rmSync(folder, { recursive: true, force: true });
  }

  return {
    database,
    query: (sql) =>
      run("psql", ["-h", "127.0.0.1", "-p", String(port), "-U", database.username, "-d", database.database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql], {
        PGPASSWORD: database.password,
      }).trim(),
    stop: stopCluster,
  };
}
