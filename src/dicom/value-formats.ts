/**
 * DICOM value representations written by hand where dcmjs takes strings: UI (is it a UID?), DS (decimal string, 16
 * characters at most), DA, TM and DT (in UTC, so the same instant gives the same file on any machine). PS3.5 6.2.
 */

/** A UID as PS3.5 9.1 allows: digits and dots, no leading zero in a component, at most 64 characters. */
export function isUid(x: unknown): x is string {
  return typeof x === "string" && x.length <= 64 && /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/.test(x);
}

/** A Decimal String (DS) value: at most 16 characters (PS3.5 6.2), as precise as fits. */
export function formatDS(value: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`formatDS: ${value} is not a finite number`);
  if (Object.is(value, -0)) return "0";
  for (let digits = 15; digits >= 1; digits--) {
    let s = value.toPrecision(digits);
    if (s.includes("e")) s = Number(s).toString();
    if (s.includes(".") && !s.includes("e")) s = s.replace(/0+$/, "").replace(/\.$/, "");
    if (s.length <= 16) return s;
  }
  throw new RangeError(`formatDS: ${value} does not fit in 16 characters`);
}

function checkDate(date: Date, what: string): void {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) throw new RangeError(`${what}: not a valid Date`);
}

/** DA (YYYYMMDD) in UTC. */
export function formatDA(date: Date): string {
  checkDate(date, "formatDA");
  return date.toISOString().slice(0, 10).replace(/-/g, "");
}

/** TM (HHMMSS.FFF) in UTC. */
export function formatTM(date: Date): string {
  checkDate(date, "formatTM");
  return date.toISOString().slice(11, 23).replace(/:/g, "");
}

/** DT (YYYYMMDDHHMMSS.FFF) in UTC. */
export function formatDT(date: Date): string {
  return `${formatDA(date)}${formatTM(date)}`;
}
