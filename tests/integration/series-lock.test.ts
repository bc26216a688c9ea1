/**
 * The lock a distributed worker holds on a source series (src/service/redis-queue.ts), against a real Redis (Debian
 * redis-server on loopback): one holder at a time, only the holder renews or releases it, and it frees itself when
 * its holder stops renewing (a worker that died).
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalRedis, type LocalRedis } from "../../src/bench/local-redis.js";
import { SeriesLock } from "../../src/service/redis-queue.js";
import { requireTools } from "../helpers/system-tools.js";

const ready = requireTools("redis-server");

describe.runIf(ready)("the series lock on a real Redis", () => {
  let redis: LocalRedis;
  let connection: Redis;

  beforeAll(async () => {
    redis = await startLocalRedis();
    connection = new Redis(redis.url);
  }, 30_000);
  afterAll(async () => {
    connection?.disconnect();
    await redis?.stop();
  });

  it("has one holder, renewed and released only by it, and frees itself when not renewed", async () => {
    const lock = new SeriesLock(connection, "lock-test", 1500);
    expect(await lock.acquire("1.2.3", "worker-a")).toBe(true);
    expect(await lock.acquire("1.2.3", "worker-b")).toBe(false);
    expect(await lock.acquire("1.2.4", "worker-b")).toBe(true); // another series is free
    expect(await lock.renew("1.2.3", "worker-b")).toBe(false);
    await lock.release("1.2.3", "worker-b"); // not its lock: nothing happens
    expect(await lock.acquire("1.2.3", "worker-b")).toBe(false);

    // Renewed past its first expiry, it is still held.
    await new Promise((r) => setTimeout(r, 1000));
    expect(await lock.renew("1.2.3", "worker-a")).toBe(true);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await lock.acquire("1.2.3", "worker-b")).toBe(false);

    // Its holder stops renewing (it died): after the lock's life another takes it.
    await new Promise((r) => setTimeout(r, 1700));
    expect(await lock.acquire("1.2.3", "worker-b")).toBe(true);
    expect(await lock.renew("1.2.3", "worker-a")).toBe(false);
    await lock.release("1.2.3", "worker-b");
    expect(await lock.acquire("1.2.3", "worker-c")).toBe(true);
  });
});
