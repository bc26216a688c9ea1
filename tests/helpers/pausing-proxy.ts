/**
 * A TCP proxy between the service and Orthanc that can stop answering: `pauseAfter(bytes)` lets a response run until
 * one connection has carried that many bytes towards the service, then holds every byte in both directions, on every
 * connection, new ones included (an Orthanc that hangs mid-stream, its sockets open); `resume()` lets them flow again.
 */
import net from "node:net";

export interface PausingProxy {
  url: string;
  /** Pause once a single connection has sent `bytes` towards the client. */
  pauseAfter(bytes: number): void;
  /** Resolves when a pause armed by pauseAfter has happened. */
  paused(): Promise<void>;
  resume(): void;
  close(): Promise<void>;
}

export async function startPausingProxy(target: string): Promise<PausingProxy> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<net.Socket>();
  let paused = false;
  let pauseAt = Infinity;
  /** Bumped by pauseAfter: a connection counts its bytes from the latest arming (keep-alive connections live long). */
  let arming = 0;
  let onPaused: () => void = () => undefined;
  /** Closes held back while paused. */
  const held: (() => void)[] = [];
  let pausedPromise: Promise<void> = Promise.resolve();

  const pauseAll = (): void => {
    paused = true;
    pauseAt = Infinity;
    for (const socket of sockets) socket.pause();
    onPaused();
  };

  const server = net.createServer((client) => {
    const upstream = net.connect(Number(port), hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => undefined);
    }
    let down = 0;
    let counted = arming;
    client.on("data", (chunk: Buffer) => upstream.write(chunk));
    upstream.on("data", (chunk: Buffer) => {
      if (counted !== arming) [counted, down] = [arming, 0];
      down += chunk.length;
      if (down >= pauseAt) {
        // The bytes before the threshold go through; the rest waits.
        const through = chunk.length - (down - pauseAt);
        client.write(chunk.subarray(0, through));
        pauseAll(); // before unshift, which may emit the rest again at once
        upstream.unshift(chunk.subarray(through));
        return;
      }
      client.write(chunk);
    });
    // end, not destroy: what is still buffered for the other side must reach it. While paused, Orthanc giving up on
    // the held connection is not passed on: the service sees silence, as from an Orthanc that hangs.
    const whenAnswering = (then: () => void) => () => (paused ? held.push(then) : then());
    client.on("end", () => upstream.end());
    upstream.on("end", whenAnswering(() => client.end()));
    client.on("close", (failed) => failed && upstream.destroy());
    upstream.on("close", (failed) => failed && whenAnswering(() => client.destroy())());
    if (paused) for (const socket of [client, upstream]) socket.pause(); // after the data listeners, which resume
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as net.AddressInfo;

  return {
    url: `http://127.0.0.1:${address.port}`,
    pauseAfter(bytes) {
      pauseAt = bytes;
      arming += 1;
      pausedPromise = new Promise((resolve) => (onPaused = resolve));
    },
    paused: () => pausedPromise,
    resume() {
      paused = false;
      for (const socket of sockets) socket.resume();
      for (const then of held.splice(0)) then();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
