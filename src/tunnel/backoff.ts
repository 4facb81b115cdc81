/**
 * Exponential backoff with jitter: after the n-th consecutive failure a
 * replica is left alone for a random time between half and all of
 * min(max, initial * 2^(n-1)), so that agents that lost the same gateway do
 * not all come back to it in lockstep.
 */
export interface BackoffOptions {
  /** First delay ceiling in ms (default 100). */
  initialMs?: number;
  /** Largest delay ceiling in ms (default 5000): a gateway back up is used again within this. */
  maxMs?: number;
}

export const DEFAULT_BACKOFF = { initialMs: 100, maxMs: 5000 } as const;

export function backoffDelay(failures: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = options.initialMs ?? DEFAULT_BACKOFF.initialMs;
  const max = options.maxMs ?? DEFAULT_BACKOFF.maxMs;
  if (failures <= 0) return 0;
  const ceiling = Math.min(max, initial * 2 ** Math.min(failures - 1, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
