/**
 * The latency figures every path benchmark shares and how they are printed:
 * rounds merged into one set of percentiles, a table with the latency added
 * over direct, each round's p99 (the noise, in plain sight), a process table,
 * and ratios and verdicts that say so when direct came out slower.
 */
export interface RateResult {
  requests: number;
  errors: number;
  achieved_rps: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
}

/** One load-client.ts `rate --latencies` run. */
export interface RoundResult extends RateResult {
  latencies_ms: number[];
}

/** A path's rounds as one run: percentiles over every latency, the rate over the total time. */
export interface PathResult extends RateResult {
  /** Each round's p99, in the order run: how much the machine's noise moved it. */
  roundP99s: number[];
}

export type Percentile = 'p50_ms' | 'p90_ms' | 'p99_ms';

export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

export function mergeRounds(rounds: readonly RoundResult[]): PathResult {
  const all = rounds.flatMap((r) => r.latencies_ms).sort((x, y) => x - y);
  const requests = rounds.reduce((n, r) => n + r.requests, 0);
  const seconds = rounds.reduce((n, r) => n + r.requests / r.achieved_rps, 0);
  return {
    requests,
    errors: rounds.reduce((n, r) => n + r.errors, 0),
    achieved_rps: requests / seconds,
    p50_ms: percentile(all, 50),
    p90_ms: percentile(all, 90),
    p99_ms: percentile(all, 99),
    roundP99s: rounds.map((r) => r.p99_ms),
  };
}

/**
 * The p99 a path adds over direct round by round (each round's p99 minus
 * direct's in the same round, the two measured one after the other), then the
 * median of those: a burst of the machine's other work spoils one round, not
 * the figure, where the p99 over every latency together keeps it.
 */
export function medianAddedP99(path: PathResult, direct: PathResult): number {
  const added = path.roundP99s.map((p, i) => p - (direct.roundP99s[i] ?? NaN)).sort((x, y) => x - y);
  const mid = added.length >> 1;
  return added.length % 2 === 1 ? added[mid]! : (added[mid - 1]! + added[mid]!) / 2;
}

export interface ProcessFigures {
  name: string;
  /** CPU seconds per 1,000 requests during its own path's rounds. */
  cpuPer1k: number;
  peakRssMiB: number;
}

export const fixed = (n: number, width = 8): string => n.toFixed(3).padStart(width);
export const met = (ok: boolean): string => (ok ? 'met' : 'NOT met');

/** A ratio of added latencies; HAProxy's at or below zero (direct slower in this run) makes none. */
export function addedRatio(egressd: number, haproxy: number): string {
  return haproxy > 0 ? `${(egressd / haproxy).toFixed(2)}x` : `n/a (haproxy added ${haproxy.toFixed(3)} ms: within this run's noise)`;
}

/** Added latency against its target; a negative one means direct was slower in this run (noise), which proves nothing. */
export function addedVerdict(added: number, target: number): string {
  if (!(added >= 0)) return 'not measurable in this run (direct was slower: noise; run again or longer)';
  return met(added < target);
}

/** The ratio of added latencies against a target ratio, unjudged when either side is noise. */
export function ratioVerdict(egressd: number, haproxy: number, target: number): string {
  if (!(haproxy > 0) || !(egressd >= 0)) return 'not measurable in this run (direct was slower: noise; run again or longer)';
  return met(egressd / haproxy < target);
}

/** A column beyond the latencies, e.g. bulk throughput. */
export interface ExtraColumn<N extends string> {
  header: string;
  width: number;
  cell: (name: N) => string;
}

/**
 * The latency table: p50/p90/p99, the same added over `direct` (a path named
 * so must be among them), the achieved rate and errors, then `extra` columns.
 */
export function latencyTable<N extends string>(paths: Record<N, PathResult> & Record<'direct', PathResult>, names: readonly N[], extra: ReadonlyArray<ExtraColumn<N>> = []): string[] {
  const d = paths.direct;
  const keys: Percentile[] = ['p50_ms', 'p90_ms', 'p99_ms'];
  const row = (name: N): string => {
    const p: PathResult = paths[name];
    const added = name === 'direct' ? ''.padStart(30) : keys.map((k) => fixed(p[k] - d[k], 10)).join('');
    const more = extra.map((c) => c.cell(name).padStart(c.width)).join('');
    return `${name.padEnd(8)}${keys.map((k) => fixed(p[k])).join('')}${added}${p.achieved_rps.toFixed(0).padStart(8)}${String(p.errors).padStart(6)}${more}`;
  };
  const header = `${'path'.padEnd(8)}${['p50 ms', 'p90 ms', 'p99 ms'].map((h) => h.padStart(8)).join('')}${['+p50 ms', '+p90 ms', '+p99 ms'].map((h) => h.padStart(10)).join('')}${'req/s'.padStart(8)}${'err'.padStart(6)}${extra.map((c) => c.header.padStart(c.width)).join('')}   (+: added over direct)`;
  return [
    header,
    ...names.map(row),
    `p99 per round, ms: ${names.map((name) => `${name} ${paths[name].roundP99s.map((p) => p.toFixed(1)).join('/')}`).join(';  ')}`,
  ];
}

export function processTable(processes: readonly ProcessFigures[]): string[] {
  return [
    `process                 CPU s / 1k req   peak RSS MiB`,
    ...processes.map((p) => `${p.name.padEnd(24)}${p.cpuPer1k.toFixed(3).padStart(14)}${p.peakRssMiB.toFixed(1).padStart(15)}`),
  ];
}
