/**
 * A RIS's webhook endpoint for tests: node:http on a free loopback port that keeps every request as received (raw
 * body bytes, headers) and answers each with the status a script gives (e.g. 500 first, then 200), or not at all.
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedNotification {
  headers: IncomingHttpHeaders;
  /** The exact bytes, as a receiver must verify them. */
  body: Buffer;
  /** What the receiver answered (0 when it did not). */
  answered: number;
  at: number;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedNotification[];
  close(): Promise<void>;
}

/**
 * `answer(n)` is the status for the n-th request (0-based), or "hang" to never answer. Extra headers (Retry-After)
 * can be given with a status as `[status, headers]`.
 */
export async function startWebhookReceiver(
  answer: (n: number) => number | "hang" | [number, Record<string, string>] = () => 200,
): Promise<WebhookReceiver> {
  const received: ReceivedNotification[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const entry: ReceivedNotification = { headers: request.headers, body: Buffer.concat(chunks), answered: 0, at: Date.now() };
      const planned = answer(received.length);
      received.push(entry);
      if (planned === "hang") return;
      const [status, headers] = Array.isArray(planned) ? planned : [planned, {}];
      entry.answered = status;
      response.writeHead(status, { "Content-Type": "text/plain", ...headers }).end(status < 300 ? "ok" : "not now");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/ris/ct-enhance`,
    received,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
