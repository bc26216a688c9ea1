import { afterEach, describe, expect, it } from "vitest";
import { EventLoopDelay } from "../../src/event-loop.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A loop that never yields, as a long parse on the main thread would. */
function block(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

describe("the service's own event-loop delay", () => {
  let watch: EventLoopDelay | undefined;
  afterEach(() => watch?.stop());

  it("reports a 300 ms block in its second and in the minute, and less than that once the loop is free", async () => {
    watch = new EventLoopDelay();
    await sleep(1100);
    block(300);
    await sleep(1100);
    // The histogram sees the timer's whole interval; the resolution (10 ms) comes off.
    expect(watch.lastMinuteMaxMs()).toBeGreaterThanOrEqual(285);
    expect(watch.lastMinuteMaxMs()).toBeLessThan(1000);
    await sleep(1100); // a whole second without the block (other test files may load this machine: not 0)
    expect(watch.lastSecondMaxMs()).toBeLessThan(200);
    expect(watch.lastMinuteMaxMs()).toBeGreaterThanOrEqual(285);
  });
});
