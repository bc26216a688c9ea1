/** A derived series waiting for its checks lies on disk, comes back byte for byte in order, and leaves nothing behind. */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { clearStaleSpool, HeldInstances } from "../../src/pipeline/outputs/held-instances.js";
import { Stage } from "../../src/stage-error.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), "ct-enhance-spool-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const instance = (size: number, seed: number): Uint8Array => Uint8Array.from({ length: size }, (_, i) => (i * 31 + seed) & 0xff);

describe("held instances", () => {
  it("gives back what was added, in order and byte for byte, and removes its file when discarded", async () => {
    const spool = path.join(dir, "spool");
    const held = await HeldInstances.open(spool, "2.25.42");
    const added = [instance(1000, 1), instance(3, 2), instance(70_000, 3)];
    for (const one of added) await held.add(one);
    expect(held.count).toBe(3);
    expect(readdirSync(spool)).toEqual([`${process.pid}-2.25.42.held`]);
    const back: Uint8Array[] = [];
    for await (const one of held.take()) back.push(one);
    expect(back).toEqual(added);
    await held.discard();
    await held.discard();
    expect(readdirSync(spool)).toEqual([]);
  });

  it("fails the write stage, retryable and saying what to free, when the spool folder cannot be made", async () => {
    const spool = path.join(dir, "a-file");
    writeFileSync(spool, "not a folder"); // refused even to root, unlike a read-only folder
    const failure = HeldInstances.open(spool, "2.25.7");
    await expect(failure).rejects.toMatchObject({ stage: Stage.Write, retryable: true });
    await expect(failure).rejects.toThrow(/cannot hold the derived instances in .*a-file.* until their checks pass: .*free space/);
  });

  it("removes at start-up the files of processes that are gone, and keeps a live process's", () => {
    const spool = path.join(dir, "spool");
    mkdirSync(spool);
    const gone = 2 ** 22 + 12_345; // above Linux's largest pid (pid_max is at most 2^22): no process has it
    const mine = path.join(spool, `${process.pid}-2.25.1.held`);
    const dead = path.join(spool, `${gone}-2.25.2.held`);
    const other = path.join(spool, "notes.txt");
    for (const file of [mine, dead, other]) writeFileSync(file, "x");
    expect(clearStaleSpool(spool)).toBe(1);
    expect([existsSync(mine), existsSync(dead), existsSync(other)]).toEqual([true, false, true]);
    expect(clearStaleSpool(path.join(dir, "absent"))).toBe(0);
  });
});
