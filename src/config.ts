/**
 * One typed configuration, read from an optional JSON file and then from CT_ENHANCE_* environment variables (which
 * win), validated at start. A bad value stops the service with the key's name, the variable that sets it and why.
 */
import { readFileSync } from "node:fs";
import { totalmem } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import cron from "node-cron";
import { z } from "zod";

/** The repository (or installed package) root: models/ and orthanc-config/ live here. */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export const Provider = z.enum(["auto", "cuda", "webgpu", "cpu"]);
export type Provider = z.infer<typeof Provider>;
/** Which model file runs where a manifest offers an fp16 variant: auto = fp16 on GPU providers, fp32 on the CPU. */
export const Precision = z.enum(["auto", "fp32", "fp16"]);
export type Precision = z.infer<typeof Precision>;

/**
 * How long one stage of a job may take: `seconds` plus `perSliceSeconds` for every slice of the source series. A stage
 * past it fails the job as retryable, naming the stage and its limit; a stuck inference worker is replaced.
 */
const StageBudget = (seconds: number, perSliceSeconds: number) => z.object({
  seconds: z.number().positive().default(seconds),
  perSliceSeconds: z.number().min(0).default(perSliceSeconds),
}).prefault({});
export type StageBudget = { seconds: number; perSliceSeconds: number };

/** An eighth of this machine's memory, MiB (see limits.maxVolumeMiB). */
export const DEFAULT_MAX_VOLUME_MIB = Math.max(256, Math.floor(totalmem() / 2 ** 20 / 8));

const CronExpression = z.string().refine((text) => text === "off" || cron.validate(text),
  "must be a cron expression (e.g. '*/15 * * * *') or 'off'");

const Config = z.object({
  orthanc: z.object({
    /** Orthanc's REST root. */
    url: z.string().url().default("http://127.0.0.1:8042"),
    /** DICOMweb root, relative to orthanc.url. */
    dicomwebRoot: z.string().regex(/^\//, "must start with '/'").default("/dicom-web"),
    username: z.string().optional(),
    password: z.string().optional(),
    /** Milliseconds to wait for one REST/DICOMweb answer before the request counts as failed. */
    timeoutMs: z.number().int().positive().default(120_000),
  }).prefault({}),
  /** Folder for the job ledger (SQLite) and previews. */
  dataDir: z.string().min(1).default(path.join(process.cwd(), ".data")),
  api: z.object({
    host: z.string().default("127.0.0.1"),
    port: z.number().int().min(0).max(65535).default(8190),
    /** Bearer token for the API (everything but /health and /ready). */
    token: z.string().default(""),
    /** With no token: allow the API without one, only when it listens on loopback. Off = a token is required. */
    allowLoopbackWithoutToken: z.boolean().default(false),
  }).prefault({}),
  modelsDir: z.string().default(path.join(PACKAGE_ROOT, "models")),
  /** Pipelines and their selection rules (data). */
  pipelinesFile: z.string().default(path.join(PACKAGE_ROOT, "models", "pipelines.json")),
  feed: z.object({
    /** How often the change feed asks Orthanc for new changes when it is caught up, ms. */
    pollIntervalMs: z.number().int().positive().default(1000),
    /** Changes fetched per request. */
    pageSize: z.number().int().min(1).max(1000).default(200),
    /**
     * Seconds without a new instance after which a series seen through NewSeries counts as stable when Orthanc does
     * not say so itself (it forgets unstable series on restart). Match Orthanc's StableAge.
     */
    stableAgeSeconds: z.number().int().positive().default(60),
  }).prefault({}),
  inference: z.object({
    provider: Provider.default("auto"),
    /** Threads for the CPU provider; 0 = onnxruntime's default (all cores). */
    cpuThreads: z.number().int().min(0).default(0),
    /** fp16 forces the variant on every provider (CPUs with fast fp16); fp32 never uses it. */
    precision: Precision.default("auto"),
  }).prefault({}),
  store: z.object({
    /**
     * Instances per STOW-RS request, and requests in flight. A derived series is stored after the model has finished
     * and its checks have passed, so the store has the CPUs to itself: on 2 cores 261 instances took 0.93 s with 16 x 4
     * against 1.16 s with 16 x 2 (medians of three, Orthanc 1.10.1 on the same machine, 2026-11-30).
     */
    instancesPerRequest: z.number().int().positive().default(16),
    /** STOW-RS requests in flight at once. */
    parallelRequests: z.number().int().positive().default(4),
  }).prefault({}),
  /**
   * Stage timeouts. Measured on the 2-core machine (261 slices): WADO-RS fetch 0.5-1.1 s, CPU inference ~0.45 s a
   * slice, one STOW-RS of the series 3.4 s; the defaults leave ample room (fetch 60 s + 0.5 s a slice, infer
   * 300 s + 10 s a slice, store 120 s + 1 s a slice) and only catch what no longer moves.
   */
  stageTimeouts: z.object({
    fetch: StageBudget(60, 0.5),
    infer: StageBudget(300, 10),
    store: StageBudget(120, 1),
  }).prefault({}),
  limits: z.object({
    /**
     * The largest float32 volume (slices x rows x columns x 4 bytes) a job may build, MiB; a larger series is refused
     * (failed, not retryable) before it is fetched. A job peaks at about 2.6x its volume, so the default, an eighth
     * of this machine's memory, keeps a job's peak near a third of it (a 2000-slice 512x512 series is 2000 MiB).
     */
    maxVolumeMiB: z.number().int().positive().default(DEFAULT_MAX_VOLUME_MIB),
  }).prefault({}),
  jobs: z.object({
    /** Attempts before a retryable failure becomes final. */
    maxAttempts: z.number().int().positive().default(5),
    /** First retry delay, seconds; doubles per attempt. */
    retryDelaySeconds: z.number().positive().default(30),
  }).prefault({}),
  /**
   * Result notification: a signed HTTP POST to a RIS/worklist when a job ends done, failed or rejected. Off while
   * url is unset; secret is required once it is set (HMAC-SHA256 key, never logged).
   */
  webhook: z.object({
    url: z.string().url().refine((text) => /^https?:\/\//i.test(text), "must be an http:// or https:// URL").optional(),
    secret: z.string().min(16, "must be at least 16 characters (an HMAC-SHA256 key)").optional(),
    /** Milliseconds to wait for the receiver's answer before the attempt counts as failed (and is retried). */
    timeoutMs: z.number().int().positive().default(10_000),
    /** Attempts per notification, the first included, before it is given up (logged, counted in /metrics). */
    maxAttempts: z.number().int().positive().default(12),
    /** First retry delay, seconds; doubles per attempt up to maxRetryDelaySeconds (a 429/503 Retry-After is honoured). */
    retryDelaySeconds: z.number().positive().default(5),
    maxRetryDelaySeconds: z.number().positive().default(900),
  }).prefault({}),
  lanes: z.object({
    /**
     * When off-peak jobs may start: the minutes a node-cron expression matches (every second it matches, with 6
     * fields), local time. Default: 00:00-05:59. A job running when the window closes finishes.
     */
    offPeakWindow: z.string().refine((text) => cron.validate(text), "must be a cron expression (e.g. '* 0-5 * * *')")
      .default("* 0-5 * * *"),
  }).prefault({}),
  /**
   * Distributed mode (README "Scaling out"): with redisUrl set, `serve` is the follower that hands jobs to a BullMQ
   * queue in that Redis and `worker` processes take them; unset, `serve` runs every job itself (the embedded mode).
   */
  queue: z.object({
    redisUrl: z.string().url().refine((text) => /^rediss?:\/\//i.test(text), "must be a redis:// or rediss:// URL").optional(),
    /** Queue (and key prefix) name in Redis: two nodes sharing one Redis use different names. */
    name: z.string().regex(/^[A-Za-z0-9_-]+$/, "letters, digits, '-' and '_' only").default("ct-enhance"),
    /** This worker's name on the API and /metrics (default: host name and process id). */
    workerName: z.string().min(1).optional(),
    /**
     * How long a worker's claim on a job (BullMQ's lock) and on its source series lasts without renewal, ms; renewed
     * at half of it while the job runs. A worker that dies loses both after this long, and another takes the job.
     */
    lockDurationMs: z.number().int().min(1000).default(30_000),
    /** How often workers look for jobs whose worker died (BullMQ's stalled check), ms. */
    stalledIntervalMs: z.number().int().min(500).default(30_000),
    /** Times a job may lose its worker before it fails (retried by the ledger's own policy then). */
    maxStalledCount: z.number().int().min(0).default(2),
    /** How often the follower sweeps the queue for results it has not applied (also at its start), ms. */
    sweepIntervalMs: z.number().int().positive().default(5_000),
  }).prefault({}),
  /** node-cron expressions (5 fields, or 6 with seconds first); "off" disables a schedule. */
  schedules: z.object({
    /** Look for series the change feed missed or that changed while the service was down, and queue them. */
    reconcile: CronExpression.default("*/15 * * * *"),
    /** Also reconcile once when the service starts. */
    reconcileAtStart: z.boolean().default(true),
    /** Move retry-wait jobs whose time has come back to the queue (with a timeline event). */
    retry: CronExpression.default("* * * * *"),
    /** Delete finished job records (and their previews) older than retentionDays. */
    retention: CronExpression.default("30 3 * * *"),
    retentionDays: z.number().positive().default(90),
  }).prefault({}),
});
export type Config = z.infer<typeof Config>;

/** Environment variable -> config key path, and how to parse it. */
const ENVIRONMENT: Record<string, { key: string[]; kind: "string" | "number" | "boolean" }> = {
  CT_ENHANCE_ORTHANC_URL: { key: ["orthanc", "url"], kind: "string" },
  CT_ENHANCE_DICOMWEB_ROOT: { key: ["orthanc", "dicomwebRoot"], kind: "string" },
  CT_ENHANCE_ORTHANC_USERNAME: { key: ["orthanc", "username"], kind: "string" },
  CT_ENHANCE_ORTHANC_PASSWORD: { key: ["orthanc", "password"], kind: "string" },
  CT_ENHANCE_DATA_DIR: { key: ["dataDir"], kind: "string" },
  CT_ENHANCE_HOST: { key: ["api", "host"], kind: "string" },
  CT_ENHANCE_PORT: { key: ["api", "port"], kind: "number" },
  CT_ENHANCE_API_TOKEN: { key: ["api", "token"], kind: "string" },
  CT_ENHANCE_MODELS_DIR: { key: ["modelsDir"], kind: "string" },
  CT_ENHANCE_PIPELINES_FILE: { key: ["pipelinesFile"], kind: "string" },
  CT_ENHANCE_POLL_INTERVAL_MS: { key: ["feed", "pollIntervalMs"], kind: "number" },
  CT_ENHANCE_STABLE_AGE_SECONDS: { key: ["feed", "stableAgeSeconds"], kind: "number" },
  CT_ENHANCE_PROVIDER: { key: ["inference", "provider"], kind: "string" },
  CT_ENHANCE_CPU_THREADS: { key: ["inference", "cpuThreads"], kind: "number" },
  CT_ENHANCE_PRECISION: { key: ["inference", "precision"], kind: "string" },
  CT_ENHANCE_MAX_VOLUME_MB: { key: ["limits", "maxVolumeMiB"], kind: "number" },
  CT_ENHANCE_RETRY_DELAY_SECONDS: { key: ["jobs", "retryDelaySeconds"], kind: "number" },
  CT_ENHANCE_FETCH_TIMEOUT_SECONDS: { key: ["stageTimeouts", "fetch", "seconds"], kind: "number" },
  CT_ENHANCE_FETCH_TIMEOUT_PER_SLICE_SECONDS: { key: ["stageTimeouts", "fetch", "perSliceSeconds"], kind: "number" },
  CT_ENHANCE_INFER_TIMEOUT_SECONDS: { key: ["stageTimeouts", "infer", "seconds"], kind: "number" },
  CT_ENHANCE_INFER_TIMEOUT_PER_SLICE_SECONDS: { key: ["stageTimeouts", "infer", "perSliceSeconds"], kind: "number" },
  CT_ENHANCE_STORE_TIMEOUT_SECONDS: { key: ["stageTimeouts", "store", "seconds"], kind: "number" },
  CT_ENHANCE_STORE_TIMEOUT_PER_SLICE_SECONDS: { key: ["stageTimeouts", "store", "perSliceSeconds"], kind: "number" },
  CT_ENHANCE_API_ALLOW_LOOPBACK_WITHOUT_TOKEN: { key: ["api", "allowLoopbackWithoutToken"], kind: "boolean" },
  CT_ENHANCE_RECONCILE_CRON: { key: ["schedules", "reconcile"], kind: "string" },
  CT_ENHANCE_RECONCILE_AT_START: { key: ["schedules", "reconcileAtStart"], kind: "boolean" },
  CT_ENHANCE_RETRY_CRON: { key: ["schedules", "retry"], kind: "string" },
  CT_ENHANCE_RETENTION_CRON: { key: ["schedules", "retention"], kind: "string" },
  CT_ENHANCE_RETENTION_DAYS: { key: ["schedules", "retentionDays"], kind: "number" },
  CT_ENHANCE_OFF_PEAK_WINDOW: { key: ["lanes", "offPeakWindow"], kind: "string" },
  CT_ENHANCE_REDIS_URL: { key: ["queue", "redisUrl"], kind: "string" },
  CT_ENHANCE_QUEUE_NAME: { key: ["queue", "name"], kind: "string" },
  CT_ENHANCE_WORKER_NAME: { key: ["queue", "workerName"], kind: "string" },
  CT_ENHANCE_QUEUE_LOCK_MS: { key: ["queue", "lockDurationMs"], kind: "number" },
  CT_ENHANCE_QUEUE_STALLED_INTERVAL_MS: { key: ["queue", "stalledIntervalMs"], kind: "number" },
  CT_ENHANCE_WEBHOOK_URL: { key: ["webhook", "url"], kind: "string" },
  CT_ENHANCE_WEBHOOK_SECRET: { key: ["webhook", "secret"], kind: "string" },
  CT_ENHANCE_WEBHOOK_TIMEOUT_MS: { key: ["webhook", "timeoutMs"], kind: "number" },
  CT_ENHANCE_WEBHOOK_MAX_ATTEMPTS: { key: ["webhook", "maxAttempts"], kind: "number" },
  CT_ENHANCE_WEBHOOK_RETRY_DELAY_SECONDS: { key: ["webhook", "retryDelaySeconds"], kind: "number" },
  CT_ENHANCE_WEBHOOK_MAX_RETRY_DELAY_SECONDS: { key: ["webhook", "maxRetryDelaySeconds"], kind: "number" },
};

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

function setPath(target: Record<string, unknown>, key: string[], value: unknown): void {
  let node = target;
  for (const part of key.slice(0, -1)) {
    const next = node[part];
    node = (typeof next === "object" && next !== null ? next : (node[part] = {})) as Record<string, unknown>;
  }
  node[key[key.length - 1]!] = value;
}

function environmentNameOf(key: PropertyKey[]): string | undefined {
  const dotted = key.join(".");
  return Object.entries(ENVIRONMENT).find(([, spec]) => spec.key.join(".") === dotted)?.[0];
}

/**
 * Reads the config file (if given: argument, or CT_ENHANCE_CONFIG) and the environment, and validates both.
 * Throws ConfigError naming every bad key.
 */
export function loadConfig(file?: string, environment: NodeJS.ProcessEnv = process.env): Config {
  const configFile = file ?? environment.CT_ENHANCE_CONFIG;
  let raw: Record<string, unknown> = {};
  if (configFile) {
    try {
      raw = JSON.parse(readFileSync(configFile, "utf8")) as Record<string, unknown>;
    } catch (error) {
      throw new ConfigError(`cannot read config file ${configFile}: ${(error as Error).message}`);
    }
  }
  for (const [name, spec] of Object.entries(ENVIRONMENT)) {
    const text = environment[name];
    if (text === undefined || text === "") continue;
    let value: string | number | boolean = text;
    if (spec.kind === "number") {
      value = Number(text);
      if (!Number.isFinite(value)) {
        throw new ConfigError(`config key ${spec.key.join(".")} (from ${name}): '${text}' is not a number`);
      }
    } else if (spec.kind === "boolean") {
      if (!/^(true|false|1|0)$/i.test(text)) {
        throw new ConfigError(`config key ${spec.key.join(".")} (from ${name}): '${text}' is not true or false`);
      }
      value = /^(true|1)$/i.test(text);
    }
    setPath(raw, spec.key, value);
  }
  const parsed = Config.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const env = environmentNameOf(issue.path);
      return `config key ${issue.path.join(".") || "(root)"}${env ? ` (env ${env})` : ""}: ${issue.message}`;
    });
    throw new ConfigError(problems.join("; "));
  }
  const config = parsed.data;
  if (!config.api.token && !isLoopback(config.api.host)) {
    throw new ConfigError(
      `config key api.token (env CT_ENHANCE_API_TOKEN): required when the API listens on ${config.api.host}, which is not loopback`,
    );
  }
  if (config.webhook.url && !config.webhook.secret) {
    throw new ConfigError(
      "config key webhook.secret (env CT_ENHANCE_WEBHOOK_SECRET): required when webhook.url is set (the receiver checks the signature with it)",
    );
  }
  return config;
}

/** The webhook settings when result notification is on (a URL and its secret), else undefined. */
export function webhookSettings(config: Config): (Config["webhook"] & { url: string; secret: string }) | undefined {
  const { url, secret } = config.webhook;
  return url && secret ? { ...config.webhook, url, secret } : undefined;
}

/**
 * For `serve` (the commands that open no API need no token): the API needs a token unless it listens on loopback
 * and api.allowLoopbackWithoutToken says an open loopback API is wanted.
 */
export function checkApiAccess(config: Config): void {
  if (config.api.token || (config.api.allowLoopbackWithoutToken && isLoopback(config.api.host))) return;
  throw new ConfigError(
    "config key api.token (env CT_ENHANCE_API_TOKEN): set a token, or allow an open API on loopback with " +
      "api.allowLoopbackWithoutToken (env CT_ENHANCE_API_ALLOW_LOOPBACK_WITHOUT_TOKEN=true)",
  );
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}
