/**
 * Priority lanes (issue 15): the lane rule alone (pickLane), then through the ledger's next(), which both the
 * embedded queue and a dispatcher ask: urgent overtakes a routine backlog, routine is never starved (1 start in 4 when
 * both wait, so urgent takes 3 of 4, more than mercure's 2 of 3), off-peak starts only inside its window, and a
 * person can make a waiting job urgent. Where a series' lane comes from: the pipelines file's urgent rule.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { JobState } from "../../src/jobs/job-records.js";
import { Lane, pickLane, URGENT_STREAK } from "../../src/jobs/lanes.js";
import { Ledger } from "../../src/jobs/ledger.js";
import { OffPeakWindow } from "../../src/jobs/off-peak-window.js";
import { laneFor, type LaneRules } from "../../src/pipeline/lane-rules.js";
import { loadLaneRules, loadPipelines } from "../../src/pipeline/pipelines.js";

const none = { urgent: 0, routine: 0, "off-peak": 0 };

describe("the lane rule", () => {
  it("takes urgent first, whatever waits behind it", () => {
    expect(pickLane({ ...none, urgent: 1, routine: 20 }, [Lane.Routine, Lane.Routine, Lane.Routine], true)).toBe(Lane.Urgent);
    expect(pickLane({ ...none, urgent: 1, routine: 20 }, [], false)).toBe(Lane.Urgent);
  });

  it(`gives a waiting routine job the start after ${URGENT_STREAK} urgent starts in a row`, () => {
    const streak = Array.from({ length: URGENT_STREAK }, () => Lane.Urgent);
    expect(pickLane({ ...none, urgent: 5, routine: 1 }, streak, false)).toBe(Lane.Routine);
    expect(pickLane({ ...none, urgent: 5, routine: 1 }, streak.slice(1), false)).toBe(Lane.Urgent);
    expect(pickLane({ ...none, urgent: 5, routine: 1 }, [Lane.Urgent, Lane.Routine, Lane.Urgent], false)).toBe(Lane.Urgent);
    // Nothing else waits: urgent keeps the node.
    expect(pickLane({ ...none, urgent: 5 }, streak, false)).toBe(Lane.Urgent);
  });

  it("starts off-peak jobs only inside the window, after routine ones", () => {
    expect(pickLane({ ...none, "off-peak": 3 }, [], false)).toBeUndefined();
    expect(pickLane({ ...none, "off-peak": 3 }, [], true)).toBe(Lane.OffPeak);
    expect(pickLane({ ...none, routine: 1, "off-peak": 3 }, [], true)).toBe(Lane.Routine);
    // The starvation guard lets an open off-peak lane through too, never a closed one.
    const streak = [Lane.Urgent, Lane.Urgent, Lane.Urgent];
    expect(pickLane({ ...none, urgent: 2, "off-peak": 3 }, streak, true)).toBe(Lane.OffPeak);
    expect(pickLane({ ...none, urgent: 2, "off-peak": 3 }, streak, false)).toBe(Lane.Urgent);
    expect(pickLane(none, [], true)).toBeUndefined();
  });

  it("gives urgent at least 2 of every 3 starts (mercure's share) under a mixed backlog, and routine at least 1 in 4", () => {
    const waiting = { ...none, urgent: 60, routine: 60 };
    const starts: Lane[] = [];
    for (let i = 0; i < 80; i += 1) {
      const lane = pickLane(waiting, [...starts].reverse(), false)!;
      waiting[lane] -= 1;
      starts.push(lane);
    }
    const urgent = starts.filter((lane) => lane === Lane.Urgent).length;
    expect(urgent / starts.length).toBeGreaterThanOrEqual(2 / 3);
    expect(urgent / starts.length).toBe(3 / 4);
    // Every window of 4 consecutive starts holds a routine one: routine is never starved.
    for (let i = 0; i + 4 <= starts.length; i += 1) expect(starts.slice(i, i + 4)).toContain(Lane.Routine);
    // And every window of 3 holds at least 2 urgent ones: at least mercure's 2 of every 3 picks, everywhere.
    for (let i = 0; i + 3 <= starts.length; i += 1) {
      expect(starts.slice(i, i + 3).filter((lane) => lane === Lane.Urgent).length).toBeGreaterThanOrEqual(2);
    }
  });
});

describe("the off-peak window", () => {
  it("is open during every minute a 5-field expression matches, local time", () => {
    const night = new OffPeakWindow("* 0-5 * * *");
    expect(night.isOpen(new Date(2026, 10, 30, 3, 17, 42))).toBe(true);
    expect(night.isOpen(new Date(2026, 10, 30, 5, 59, 59))).toBe(true);
    expect(night.isOpen(new Date(2026, 10, 30, 6, 0, 0))).toBe(false);
    expect(night.isOpen(new Date(2026, 10, 30, 23, 59, 59))).toBe(false);
    night.close();
    const weeknights = new OffPeakWindow("* 22-23,0-5 * * 1-5");
    expect(weeknights.isOpen(new Date(2026, 10, 30, 22, 30))).toBe(true); // a Monday
    expect(weeknights.isOpen(new Date(2026, 10, 29, 22, 30))).toBe(false); // a Sunday
    weeknights.close();
  });

  it("is open during every second a 6-field expression matches", () => {
    const window = new OffPeakWindow("10-20 * * * * *");
    expect(window.isOpen(new Date(2026, 10, 30, 12, 0, 9, 999))).toBe(false);
    expect(window.isOpen(new Date(2026, 10, 30, 12, 0, 10, 500))).toBe(true);
    expect(window.isOpen(new Date(2026, 10, 30, 12, 0, 21))).toBe(false);
    window.close();
  });

  it("refuses what is not a cron expression", () => {
    expect(() => new OffPeakWindow("nightly")).toThrow(/not a cron expression/);
  });
});

describe("lanes through the ledger", () => {
  let dir: string;
  let ledger: Ledger;
  let n = 0;
  const job = (lane: Lane) => {
    n += 1;
    return ledger.jobs.create({ sourceOrthancId: `o${n}`, sourceSeriesUid: `1.2.${n}`, studyUid: "1.2", pipeline: "p", modelId: "m", modelVersion: "1" },
      { lane }).job;
  };
  /** Starts and finishes the job next() gives, as the queue does; returns it. */
  const runNext = (at?: Date) => {
    const next = ledger.jobs.next(at);
    if (!next) return undefined;
    expect(ledger.jobs.start(next.id)).toBe(true);
    expect(ledger.jobs.finish(next.id, "ok")).toBe(true);
    return next;
  };

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "lanes-"));
    ledger = new Ledger(dir);
  });
  afterEach(() => {
    ledger.jobs.lanes.offPeakWindow?.close();
    ledger.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("starts an urgent job that arrives behind 20 routine ones next", () => {
    const routine = Array.from({ length: 20 }, () => job(Lane.Routine));
    expect(runNext()!.id).toBe(routine[0]!.id);
    const urgent = job(Lane.Urgent);
    expect(ledger.jobs.lanes.waiting(new Date())).toEqual({ urgent: 1, routine: 19, "off-peak": 0 });
    expect(runNext()!.id).toBe(urgent.id);
    expect(runNext()!.id).toBe(routine[1]!.id);
  });

  it("interleaves a mixed backlog 3 urgent to 1 routine, read back from the ledger's start events", () => {
    const routine = Array.from({ length: 6 }, () => job(Lane.Routine).id);
    const urgent = Array.from({ length: 9 }, () => job(Lane.Urgent).id);
    const order = Array.from({ length: 15 }, () => runNext()!.id);
    const lanes = order.map((id) => (urgent.includes(id) ? "U" : "R")).join("");
    expect(lanes).toBe("UUURUUURUUURRRR");
    // Oldest first within a lane.
    expect(order.filter((id) => routine.includes(id))).toEqual(routine);
    expect(order.filter((id) => urgent.includes(id))).toEqual(urgent);
    expect(ledger.jobs.lanes.recentStarts(3)).toEqual([Lane.Routine, Lane.Routine, Lane.Routine]);
  });

  it("keeps an off-peak job waiting until its window opens; a routine one meanwhile runs", () => {
    ledger.jobs.lanes.offPeakWindow = new OffPeakWindow("* 0-5 * * *");
    const offPeak = job(Lane.OffPeak);
    const day = new Date(2026, 10, 30, 14, 0);
    expect(ledger.jobs.next(day)).toBeUndefined();
    const routine = job(Lane.Routine);
    expect(runNext(day)!.id).toBe(routine.id);
    expect(ledger.jobs.next(day)).toBeUndefined();
    expect(ledger.jobs.next(new Date(2026, 10, 30, 23, 59))).toBeUndefined();
    expect(runNext(new Date(2026, 11, 1, 0, 0, 5))!.id).toBe(offPeak.id);
  });

  it("lets a due retry of an off-peak job wait for the window too", () => {
    ledger.jobs.lanes.offPeakWindow = new OffPeakWindow("* 0-5 * * *");
    const offPeak = job(Lane.OffPeak);
    const night = new Date(2026, 10, 30, 1, 0);
    expect(ledger.jobs.next(night)!.id).toBe(offPeak.id);
    ledger.jobs.start(offPeak.id);
    ledger.jobs.fail(offPeak.id, { stage: "fetch", message: "Orthanc down", retryable: true }, new Date(2026, 10, 30, 1, 1));
    expect(ledger.jobs.next(new Date(2026, 10, 30, 7, 0))).toBeUndefined();
    expect(ledger.jobs.next(new Date(2026, 10, 30, 2, 0))!.id).toBe(offPeak.id);
  });

  it("makes a waiting job urgent on request, with a timeline event, and only a waiting one", () => {
    const first = job(Lane.Routine);
    const second = job(Lane.OffPeak);
    ledger.jobs.lanes.offPeakWindow = new OffPeakWindow("* 0-5 * * *");
    expect(ledger.jobs.lanes.markUrgent(second.id, "made urgent through the API")).toBe(true);
    expect(ledger.jobs.get(second.id)!.lane).toBe(Lane.Urgent);
    expect(ledger.jobs.events(second.id).at(-1)).toMatchObject({ kind: "urgent", message: "made urgent through the API" });
    expect(ledger.jobs.lanes.markUrgent(second.id, "again")).toBe(false); // urgent already
    expect(ledger.jobs.next(new Date(2026, 10, 30, 14, 0))!.id).toBe(second.id); // out of the window: urgent now
    ledger.jobs.start(first.id);
    expect(ledger.jobs.lanes.markUrgent(first.id, "too late")).toBe(false); // running
    expect(ledger.jobs.get(first.id)!.state).toBe(JobState.Running);
  });

  it("re-runs a job in the urgent lane when asked, and otherwise leaves its lane", () => {
    const done = job(Lane.Routine);
    runNext();
    expect(ledger.jobs.requeue(done.id, "re-run", false)).toBe(true);
    expect(ledger.jobs.get(done.id)!.lane).toBe(Lane.Routine);
    runNext();
    expect(ledger.jobs.requeue(done.id, "re-run", false, Lane.Urgent)).toBe(true);
    expect(ledger.jobs.get(done.id)).toMatchObject({ lane: Lane.Urgent, run: 3 });
  });
});

describe("which lane a new job waits in", () => {
  const rules: LaneRules = {
    urgent: [{ anyOf: [
      { tag: "StationName", oneOf: ["ER-CT1"] },
      { tag: "AccessionNumber", matches: "^ER" },
      { tag: "StudyPriorityID", oneOf: ["HIGH", "STAT"] },
    ] }],
  };
  const facts = (tags: Record<string, string>) => ({ instances: 100, tags: { Modality: "CT", ...tags } });

  it("is urgent when the site's rule matches a header value, whatever the pipeline's lane", () => {
    expect(laneFor(undefined, rules, facts({ StationName: "er-ct1" })).lane).toBe(Lane.Urgent);
    expect(laneFor("off-peak", rules, facts({ AccessionNumber: "ER2026-0042" })).lane).toBe(Lane.Urgent);
    expect(laneFor(undefined, rules, facts({ StudyPriorityID: "STAT" })).lane).toBe(Lane.Urgent);
  });

  it("is the pipeline's own lane otherwise, routine when it names none", () => {
    expect(laneFor(undefined, rules, facts({ StationName: "CT2", AccessionNumber: "A1", StudyPriorityID: "LOW" })).lane).toBe(Lane.Routine);
    expect(laneFor("off-peak", rules, facts({})).lane).toBe(Lane.OffPeak);
    expect(laneFor(undefined, undefined, facts({ StationName: "ER-CT1" })).lane).toBe(Lane.Routine);
  });

  it("is read from the pipelines file, whose bad lane keys are named", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "lane-rules-"));
    try {
      const pipeline = { id: "p", model: "m", outputLabel: "P", lane: "off-peak", select: [{ tag: "Modality", equals: "CT" }] };
      const good = path.join(dir, "good.json");
      writeFileSync(good, JSON.stringify({ lanes: rules, pipelines: [pipeline] }));
      expect(loadPipelines(good)[0]!.lane).toBe("off-peak");
      expect(loadLaneRules(good)).toEqual(rules);
      const badLane = path.join(dir, "bad-lane.json");
      writeFileSync(badLane, JSON.stringify({ pipelines: [{ ...pipeline, lane: "urgent" }] }));
      expect(() => loadPipelines(badLane)).toThrow(/pipelines\.0\.lane/);
      const badRule = path.join(dir, "bad-rule.json");
      writeFileSync(badRule, JSON.stringify({ lanes: { urgent: [{ tag: "StationName", equal: "ER" }] }, pipelines: [pipeline] }));
      expect(() => loadPipelines(badRule)).toThrow(/lanes\.urgent\.0/);
      const unknown = path.join(dir, "unknown.json");
      writeFileSync(unknown, JSON.stringify({ lanes: { stat: [] }, pipelines: [pipeline] }));
      expect(() => loadPipelines(unknown)).toThrow(/lanes.*stat/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
