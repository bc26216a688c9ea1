import { describe, expect, it } from "vitest";
import { deterministicUid, randomUid } from "../../src/dicom/uid.js";

describe("UIDs", () => {
  it("are valid 2.25 UIDs of at most 64 characters", () => {
    for (const uid of [deterministicUid("a", 1), randomUid()]) {
      expect(uid).toMatch(/^2\.25\.[1-9][0-9]*$/);
      expect(uid.length).toBeLessThanOrEqual(64);
    }
  });

  it("are the same for the same parts and differ otherwise", () => {
    expect(deterministicUid("series", "1.2.3", "p", "1", 1)).toBe(deterministicUid("series", "1.2.3", "p", "1", 1));
    expect(deterministicUid("series", "1.2.3", "p", "1", 2)).not.toBe(deterministicUid("series", "1.2.3", "p", "1", 1));
    expect(randomUid()).not.toBe(randomUid());
  });
});
