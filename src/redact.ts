/**
 * What a log line or an error message must never show: the API token, Orthanc's password, the webhook secret, the
 * user:password of a URL, and the value of an Authorization header. `redact` is applied to every log line
 * (src/log.ts), to the API's error answers (src/api/server.ts) and to the CLI's last word (src/cli.ts).
 */
import type { Config } from "./config.js";

const REDACTED = "[redacted]";
/** Secrets shorter than this are not searched for (they would match ordinary text); config keeps real ones longer. */
const MIN_SECRET_LENGTH = 4;
const secrets = new Set<string>();

/** Remembers values every later `redact` call replaces wherever they appear (with their base64 in a Basic header). */
export function withholdSecrets(...values: (string | undefined)[]): void {
  for (const value of values) {
    if (value && value.length >= MIN_SECRET_LENGTH) secrets.add(value);
  }
}

/** The configuration's secrets: API token, Orthanc password (and the basic credentials made of it), webhook secret. */
export function withholdConfigSecrets(config: Config): void {
  const { username, password } = config.orthanc;
  const basic = password ? Buffer.from(`${username ?? ""}:${password}`).toString("base64") : undefined;
  withholdSecrets(config.api.token, password, basic, config.webhook.secret, config.webhook.url && urlCredentials(config.webhook.url),
    config.queue.redisUrl && urlCredentials(config.queue.redisUrl));
}

function urlCredentials(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    return parsed.password ? decodeURIComponent(parsed.password) : undefined;
  } catch {
    return undefined;
  }
}

/** The text with withheld secrets, URL user:password and Authorization values replaced by [redacted]. */
export function redact(text: string): string {
  let out = text
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@"'<>]+@/gi, `$1${REDACTED}@`)
    .replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g, `$1 ${REDACTED}`);
  for (const secret of secrets) {
    // As written, and as JSON writes it (a log line is JSON: quotes and backslashes come escaped).
    out = out.split(secret).join(REDACTED).split(JSON.stringify(secret).slice(1, -1)).join(REDACTED);
  }
  return out;
}

/** A URL as a log may show it: without user:password (kept out of the string altogether). */
export function urlForLog(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = "";
    parsed.password = "";
    return parsed.toString().replace(/\/$/, url.endsWith("/") ? "/" : "");
  } catch {
    return redact(url);
  }
}
