import { EgressdError } from '../core/errors.ts';

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** Seconds of a duration written `90d`, `24h`, `30m`, `45s`, `1h30m`, or a bare number of seconds. */
export function parseDuration(text: string, what: string): number {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const parts = [...trimmed.matchAll(/(\d+)([smhd])/g)];
  if (parts.length === 0 || parts.map((m) => m[0]).join('') !== trimmed) {
    throw new EgressdError('EGRESSD_ERR_USAGE', `${what}: "${text}" is not a duration (e.g. 90d, 24h, 30m, 45s or seconds)`);
  }
  return parts.reduce((sum, m) => sum + Number(m[1]) * UNITS[m[2]!]!, 0);
}
