/**
 * Priority lanes: which lane the next job comes from. One pure rule, so the embedded queue and any dispatcher that
 * asks `ledger.jobs.next()` (the distributed mode's follower) order jobs the same way:
 * - urgent first: an urgent job never waits behind a routine backlog;
 * - but routine never starves: after URGENT_STREAK urgent starts in a row, a waiting routine (or open off-peak) job
 *   gets the next start. With URGENT_STREAK = 3 urgent takes 3 of every 4 starts when both lanes wait (mercure's
 *   processor takes 2 of 3), and a routine job waits behind at most 3 urgent ones;
 * - off-peak jobs start only while the off-peak window is open (off-peak-window.ts), and then after routine ones:
 *   they are the work that was put off to leave the day's machine to the day's series.
 * The streak is read from the ledger's own start events, not kept in memory, so it survives a restart and holds
 * wherever `start` is called.
 */

export const Lane = {
  Urgent: "urgent",
  Routine: "routine",
  /** Runs only inside the off-peak window (a cron expression, e.g. every minute of 00:00-05:59). */
  OffPeak: "off-peak",
} as const;
export type Lane = (typeof Lane)[keyof typeof Lane];
export const LANES: readonly Lane[] = [Lane.Urgent, Lane.Routine, Lane.OffPeak];

/**
 * Urgent starts in a row after which a waiting non-urgent job goes next (1 pick in URGENT_STREAK + 1 for routine).
 * Why 3: it gives urgent more than mercure's 2 of 3 (3 of 4), while a routine series under a sustained urgent flood
 * still moves at a quarter of the node's pace instead of not at all; a larger streak would starve routine longer for
 * little: an urgent series already waits at most one job when it arrives.
 */
export const URGENT_STREAK = 3;

/** Jobs waiting to start now, per lane (queued, and retries that are due). */
export type WaitingByLane = Record<Lane, number>;

/**
 * The lane the next start comes from, or undefined when nothing may start. `recentStarts` are the lanes of the
 * latest starts, newest first (at least URGENT_STREAK of them when there were that many).
 */
export function pickLane(waiting: WaitingByLane, recentStarts: readonly Lane[], offPeakOpen: boolean): Lane | undefined {
  const nonUrgent = waiting.routine > 0 ? Lane.Routine : offPeakOpen && waiting["off-peak"] > 0 ? Lane.OffPeak : undefined;
  if (waiting.urgent === 0) return nonUrgent;
  const streak = recentStarts.slice(0, URGENT_STREAK);
  const urgentRun = streak.length === URGENT_STREAK && streak.every((lane) => lane === Lane.Urgent);
  return urgentRun && nonUrgent ? nonUrgent : Lane.Urgent;
}
