/**
 * Structured one-line JSON logs on stderr. Log identifiers (Orthanc IDs, UIDs), never patient names, IDs or birth
 * dates: callers pass fields explicitly, and fields named like PHI are refused at the door. Never credentials either:
 * every line passes through `redact` (src/redact.ts) on its way out.
 */
import { redact } from "./redact.js";

type Level = "debug" | "info" | "warn" | "error";
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const PHI_KEYS = /patient(name|id|birth)|^(name|birthdate|dob)$/i;

let threshold: Level = (process.env.CT_ENHANCE_LOG_LEVEL as Level | undefined) ?? "info";

export function setLogLevel(level: Level): void {
  threshold = level;
}

function emit(level: Level, component: string, message: string, fields: Record<string, unknown> = {}): void {
  if (order[level] < order[threshold]) return;
  const safe: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) safe[key] = PHI_KEYS.test(key) ? "[withheld]" : value;
  const line = JSON.stringify({ time: new Date().toISOString(), level, component, message, ...safe });
  process.stderr.write(`${redact(line)}\n`);
}

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export function logger(component: string): Logger {
  return {
    debug: (m, f) => emit("debug", component, m, f),
    info: (m, f) => emit("info", component, m, f),
    warn: (m, f) => emit("warn", component, m, f),
    error: (m, f) => emit("error", component, m, f),
  };
}
