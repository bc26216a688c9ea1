/**
 * multipart/related bodies (RFC 2387 over RFC 2046), the envelope DICOMweb uses to carry Part-10 instances:
 * WADO-RS answers a series as one, STOW-RS takes one.
 *
 * The reader is a streaming splitter: it yields each part's bytes as soon as its closing delimiter has arrived, so a
 * series is parsed while it is still downloading and only one instance is held at a time. A part that announces its
 * Content-Length (Orthanc does) is copied straight from the network chunks into its own buffer; a part without one
 * is found by searching for the delimiter with Buffer#indexOf (native). Every yielded Uint8Array owns its memory
 * (never a view into a shared network buffer), so keeping one instance does not keep a whole response alive.
 */
import { randomBytes } from "node:crypto";

/** A multipart body that does not follow RFC 2046; `truncated` when the body ended before the closing delimiter. */
export class MultipartError extends Error {
  override readonly name = "MultipartError";
  constructor(
    message: string,
    readonly truncated = false,
  ) {
    super(message);
  }
}

const CRLF = Buffer.from("\r\n", "latin1");
const HEADER_END = Buffer.from("\r\n\r\n", "latin1");
/** Part headers longer than this are not headers: the body is not what its Content-Type says. */
const MAX_HEADER_BYTES = 64 * 1024;

/** The `boundary` parameter of a multipart Content-Type header (quoted or not). */
export function boundaryOf(contentType: string): string {
  const [mediaType] = contentType.split(";", 1);
  if (!mediaType || !/^\s*multipart\//i.test(mediaType)) {
    throw new MultipartError(`expected a multipart Content-Type, got "${contentType}"`);
  }
  const match = /;\s*boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const boundary = match?.[1] ?? match?.[2];
  if (!boundary) throw new MultipartError(`multipart Content-Type has no boundary parameter: "${contentType}"`);
  if (boundary.length > 70) throw new MultipartError(`multipart boundary is longer than 70 characters (RFC 2046)`);
  return boundary;
}

/** A growable byte window: bytes are appended at `end` and consumed from `start`; compacted only on append. */
class ByteWindow {
  private buffer = Buffer.allocUnsafe(64 * 1024);
  private start = 0;
  private end = 0;

  get length(): number {
    return this.end - this.start;
  }

  append(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.end + chunk.length > this.buffer.length) {
      const needed = this.length + chunk.length;
      if (needed <= this.buffer.length) {
        this.buffer.copy(this.buffer, 0, this.start, this.end);
      } else {
        const grown = Buffer.allocUnsafe(Math.max(needed, this.buffer.length * 2));
        this.buffer.copy(grown, 0, this.start, this.end);
        this.buffer = grown;
      }
      this.end -= this.start;
      this.start = 0;
    }
    this.buffer.set(chunk, this.end);
    this.end += chunk.length;
  }

  /** Offset (relative to the window) of `needle` at or after `from`, or -1. */
  indexOf(needle: Buffer, from = 0): number {
    return this.buffer.subarray(this.start, this.end).indexOf(needle, from);
  }

  startsWith(prefix: Buffer): boolean {
    if (this.length < prefix.length) return false;
    return this.buffer.compare(prefix, 0, prefix.length, this.start, this.start + prefix.length) === 0;
  }

  /** A view of the first `n` bytes (valid until the next append). */
  peek(n: number): Uint8Array {
    return this.buffer.subarray(this.start, this.start + n);
  }

  /** Copies the first `n` bytes into a buffer of their own. */
  take(n: number): Uint8Array {
    const part = new Uint8Array(n);
    part.set(this.buffer.subarray(this.start, this.start + n));
    this.consume(n);
    return part;
  }

  consume(n: number): void {
    this.start += n;
    if (this.start === this.end) this.start = this.end = 0;
  }
}

type State =
  | { kind: "preamble" }
  | { kind: "after-delimiter" }
  | { kind: "headers" }
  | { kind: "sized-body"; part: Uint8Array; filled: number }
  | { kind: "expect-delimiter" }
  | { kind: "scanned-body"; searchFrom: number }
  | { kind: "done" };

function contentLengthOf(headerText: string): number | undefined {
  for (const line of headerText.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    if (line.slice(0, colon).trim().toLowerCase() !== "content-length") continue;
    const value = line.slice(colon + 1).trim();
    if (!/^\d+$/.test(value)) throw new MultipartError(`part has an invalid Content-Length "${value}"`);
    return Number(value);
  }
  return undefined;
}

/**
 * Splits a multipart body into its parts' bytes, yielding each part as soon as it is complete.
 * `body` is a fetch Response body (a web ReadableStream is async-iterable in Node) or any iterable of chunks.
 * Throws MultipartError for a malformed body, with `truncated` set when the body ended early.
 */
export async function* readMultipartParts(
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  boundary: string,
): AsyncGenerator<Uint8Array, void, undefined> {
  const dashBoundary = Buffer.from(`--${boundary}`, "latin1");
  const delimiter = Buffer.from(`\r\n--${boundary}`, "latin1");
  const window = new ByteWindow();
  let state = { kind: "preamble" } as State;
  let partsRead = 0;

  // Advances the state machine over what the window holds; returns the parts completed on the way.
  const drain = (): Uint8Array[] => {
    const completed: Uint8Array[] = [];
    for (;;) {
      switch (state.kind) {
        case "preamble": {
          // The first delimiter may open the body (no CRLF before it) or follow a preamble.
          const at = window.indexOf(dashBoundary);
          if (at < 0) {
            if (window.length > MAX_HEADER_BYTES) {
              throw new MultipartError(`no multipart boundary in the first ${window.length} bytes of the body`);
            }
            return completed;
          }
          window.consume(at + dashBoundary.length);
          state = { kind: "after-delimiter" };
          break;
        }
        case "after-delimiter": {
          if (window.length < 2) return completed;
          const head = window.peek(2);
          if (head[0] === 0x2d && head[1] === 0x2d) {
            state = { kind: "done" }; // "--": close delimiter; the epilogue is ignored
            return completed;
          }
          const eol = window.indexOf(CRLF); // transport padding (spaces, tabs) may precede the CRLF
          if (eol < 0) {
            if (window.length > 1024) throw new MultipartError("multipart delimiter line does not end with CRLF");
            return completed;
          }
          window.consume(eol + CRLF.length);
          state = { kind: "headers" };
          break;
        }
        case "headers": {
          let headerText = "";
          if (window.startsWith(CRLF)) {
            window.consume(CRLF.length); // a part without headers
          } else {
            const end = window.indexOf(HEADER_END);
            if (end < 0) {
              if (window.length > MAX_HEADER_BYTES) {
                throw new MultipartError(`part ${partsRead + 1} has more than ${MAX_HEADER_BYTES} bytes of headers`);
              }
              return completed;
            }
            headerText = Buffer.from(window.peek(end)).toString("latin1");
            window.consume(end + HEADER_END.length);
          }
          const size = contentLengthOf(headerText);
          state =
            size === undefined
              ? { kind: "scanned-body", searchFrom: 0 }
              : { kind: "sized-body", part: new Uint8Array(size), filled: 0 };
          break;
        }
        case "sized-body": {
          const n = Math.min(window.length, state.part.length - state.filled);
          state.part.set(window.peek(n), state.filled);
          window.consume(n);
          state.filled += n;
          if (state.filled < state.part.length) return completed;
          completed.push(state.part);
          partsRead += 1;
          state = { kind: "expect-delimiter" };
          break;
        }
        case "expect-delimiter": {
          if (window.length < delimiter.length) return completed;
          if (!window.startsWith(delimiter)) {
            throw new MultipartError(`part ${partsRead} is not followed by the boundary where its Content-Length ends`);
          }
          window.consume(delimiter.length);
          state = { kind: "after-delimiter" };
          break;
        }
        case "scanned-body": {
          const at = window.indexOf(delimiter, state.searchFrom);
          if (at < 0) {
            state.searchFrom = Math.max(0, window.length - delimiter.length + 1);
            return completed;
          }
          completed.push(window.take(at));
          partsRead += 1;
          window.consume(delimiter.length);
          state = { kind: "after-delimiter" };
          break;
        }
        case "done":
          return completed;
      }
    }
  };

  for await (const received of body) {
    let chunk = received;
    if (state.kind === "done") continue; // drain the epilogue so the connection can be reused
    // Fast path: the bulk of a sized part goes straight from the network chunk into the part's own buffer.
    if (state.kind === "sized-body" && window.length === 0) {
      const n = Math.min(chunk.length, state.part.length - state.filled);
      state.part.set(n === chunk.length ? chunk : chunk.subarray(0, n), state.filled);
      state.filled += n;
      chunk = chunk.subarray(n);
    }
    window.append(chunk);
    for (const part of drain()) yield part;
  }
  for (const part of drain()) yield part;
  if (state.kind !== "done") {
    const where = state.kind === "preamble" ? "before the first boundary" : `after ${partsRead} complete part(s)`;
    throw new MultipartError(`multipart body ended ${where}, without its closing boundary`, true);
  }
}

/** Splits a fetch Response whose Content-Type is multipart/*, yielding each part's bytes. */
export function readMultipartResponse(response: Response): AsyncGenerator<Uint8Array, void, undefined> {
  const boundary = boundaryOf(response.headers.get("content-type") ?? "");
  if (!response.body) throw new MultipartError("multipart response has no body");
  return readMultipartParts(response.body as AsyncIterable<Uint8Array>, boundary);
}

export interface MultipartBody {
  /** The whole request body, one contiguous buffer (fetch sends it with a Content-Length). */
  body: Uint8Array;
  /** The request's Content-Type, with the boundary. */
  contentType: string;
}

/**
 * Builds a multipart/related request body, e.g. for STOW-RS: `type` is the root part's media type
 * (`application/dicom`). The boundary is random and checked against every part, so no part can contain it.
 */
export function buildMultipartRelated(parts: readonly Uint8Array[], type = "application/dicom"): MultipartBody {
  let boundary = "";
  for (let attempt = 0; ; attempt += 1) {
    boundary = `ct-enhance-${randomBytes(16).toString("hex")}`;
    const needle = Buffer.from(boundary, "latin1");
    const clash = parts.some((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength).indexOf(needle) >= 0);
    if (!clash) break;
    if (attempt > 8) throw new MultipartError("could not find a multipart boundary absent from every part");
  }
  const heads = parts.map((p, i) => {
    const delimiter = `${i === 0 ? "" : "\r\n"}--${boundary}`;
    return Buffer.from(`${delimiter}\r\nContent-Type: ${type}\r\nContent-Length: ${p.byteLength}\r\n\r\n`, "latin1");
  });
  const tail = Buffer.from(`${parts.length === 0 ? "" : "\r\n"}--${boundary}--\r\n`, "latin1");
  let total = tail.length;
  for (let i = 0; i < parts.length; i += 1) total += heads[i]!.length + parts[i]!.byteLength;
  const body = new Uint8Array(total);
  let at = 0;
  for (let i = 0; i < parts.length; i += 1) {
    body.set(heads[i]!, at);
    at += heads[i]!.length;
    body.set(parts[i]!, at);
    at += parts[i]!.byteLength;
  }
  body.set(tail, at);
  return { body, contentType: `multipart/related; type="${type}"; boundary=${boundary}` };
}
