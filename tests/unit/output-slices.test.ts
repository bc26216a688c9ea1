import { describe, expect, it } from "vitest";
import { OutputSliceQueue, type OutputSlices, wholeOutput } from "../../src/pipeline/output-slices.js";

const slices = (first: number) => ({ first, values: new Float32Array(4).fill(first) });

async function readAll(source: AsyncIterable<OutputSlices>): Promise<number[]> {
  const firsts: number[] = [];
  for await (const { first } of source) firsts.push(first);
  return firsts;
}

describe("output slices on their way to the store", () => {
  it("gives the reader what was pushed, in order, including what arrives while it waits, until the end", async () => {
    const queue = new OutputSliceQueue();
    queue.push(slices(0));
    const reading = readAll(queue);
    await new Promise((resolve) => setImmediate(resolve));
    queue.push(slices(2));
    queue.push(slices(4));
    queue.end();
    queue.push(slices(6)); // after the end: ignored
    expect(await reading).toEqual([0, 2, 4]);
    expect(await readAll(wholeOutput(new Float32Array(8)))).toEqual([0]);
  });

  it("fails the reader with the writer's error, even with slices still queued", async () => {
    const queue = new OutputSliceQueue();
    queue.push(slices(0));
    queue.fail(new Error("model failed"));
    await expect(readAll(queue)).rejects.toThrow("model failed");
  });

  it("drops what is pushed after the reader gave up", async () => {
    const queue = new OutputSliceQueue();
    queue.push(slices(0));
    queue.push(slices(2));
    for await (const item of queue) {
      expect(item.first).toBe(0);
      break;
    }
    queue.push(slices(4));
    queue.end();
    expect(await readAll(queue)).toEqual([]);
  });
});
