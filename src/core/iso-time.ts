/**
 * `Date#toISOString`, from the UTC getters. V8 formats dates through ICU and loads its
 * time-zone data on first use, about 0.9 MiB of resident memory that a sidecar then keeps for
 * good (measured against issue 5's memory budget); a UTC timestamp needs none of it. Years
 * 0-9999, as the audit schema and logs use.
 */
export function isoTime(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}T${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}.${pad(d.getUTCMilliseconds(), 3)}Z`;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}
