/**
 * The off-peak window, written as a node-cron expression read as a set of times: the window is open during every
 * minute the expression matches (5 fields, e.g. `* 0-5 * * *` = 00:00-05:59 every day, `* 22-23,0-5 * * 1-5` =
 * weeknights 22:00-05:59), or every second it matches (6 fields, seconds first). One syntax for every schedule of
 * the node, and the same expression, scheduled, wakes the queue when the window opens (schedules.ts).
 */
import cron, { type ScheduledTask } from "node-cron";

export class OffPeakWindow {
  private readonly matcher: ScheduledTask;
  private readonly bySecond: boolean;

  constructor(readonly expression: string) {
    if (!cron.validate(expression)) throw new Error(`off-peak window '${expression}' is not a cron expression`);
    // Created, never started: used only for its matcher (node-cron reads a 5-field expression as second 0).
    this.matcher = cron.createTask(expression, () => undefined);
    this.bySecond = expression.trim().split(/\s+/).length === 6;
  }

  /** Whether the window is open at `at` (local time, as cron reads it). */
  isOpen(at: Date = new Date()): boolean {
    const probe = new Date(at.getTime());
    probe.setMilliseconds(0);
    if (!this.bySecond) probe.setSeconds(0);
    return this.matcher.match(probe);
  }

  close(): void {
    void this.matcher.destroy();
  }
}
