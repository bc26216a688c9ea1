import { describe, expect, it } from "vitest";
import { OrthancReachability } from "../../src/orthanc/reachability.js";

/** An Orthanc stand-in whose /system answers as told, counting the requests. */
function fakeOrthanc() {
  const fake = {
    up: true,
    calls: 0,
    async system() {
      fake.calls += 1;
      if (!fake.up) throw new Error("connect ECONNREFUSED 127.0.0.1:8042");
      return { Version: "1.10.1", Name: "test" };
    },
  };
  return fake;
}

describe("Orthanc reachability for /health", () => {
  it("asks Orthanc once, then answers from memory until the answer is older than its age limit", async () => {
    const orthanc = fakeOrthanc();
    let clock = 1_000;
    const reachability = new OrthancReachability(orthanc, 5_000, () => clock);
    expect(await reachability.status()).toMatchObject({ reachable: true, version: "1.10.1" });
    clock += 4_000;
    await reachability.status();
    expect(orthanc.calls).toBe(1);

    orthanc.up = false;
    clock += 2_000; // now 6 s old: the stale answer comes back at once and a check starts behind it
    expect((await reachability.status()).reachable).toBe(true);
    expect(orthanc.calls).toBe(2);
    await new Promise((resolve) => setImmediate(resolve));
    expect(await reachability.status()).toMatchObject({ reachable: false, error: expect.stringContaining("ECONNREFUSED") });
  });

  it("shares one request among callers that ask at the same time", async () => {
    const orthanc = fakeOrthanc();
    const reachability = new OrthancReachability(orthanc);
    const answers = await Promise.all([reachability.status(), reachability.status(), reachability.check()]);
    expect(orthanc.calls).toBe(1);
    expect(answers.every((a) => a.reachable)).toBe(true);
  });
});
