import { addedVerdict, met, percentile } from './latency-report.ts';

/**
 * How the DNS benchmark adds up and prints its rounds: each path's
 * queries/s per round and their median, server CPU per query, percentiles
 * over all its rounds' latencies, the latency added over `direct` for the
 * same names, each round's figures so the noise is in plain sight, and the
 * issue's targets judged on them.
 */
export const PATH_NAMES = ['ceiling', 'direct hit', 'dnsmasq hit', 'egressd hit', 'direct miss', 'dnsmasq miss', 'egressd miss'] as const;
export type PathName = (typeof PATH_NAMES)[number];

/** Issue 6: cache hits at least half of dnsmasq's rate, added p99 under 0.2 ms. */
export const TARGETS = { hitRateRatio: 0.5, addedP99Ms: 0.2 } as const;

export interface RoundFigures {
  qps: number;
  /** Server CPU seconds spent during the throughput run, and the queries it answered. */
  cpuSeconds: number;
  completed: number;
  /** Sorted latencies (ms) of the fixed-rate run, a lost query as the timeout. */
  latencies: number[];
  /** Queries lost in the throughput run and in the fixed-rate run. */
  lost: number;
  latencyLost: number;
  errors: number;
}

export interface PathFigures {
  rounds: RoundFigures[];
  qps: number;
  cpuMicrosPerQuery: number;
  p50: number;
  p90: number;
  p99: number;
  lost: number;
  errors: number;
}

export function median(list: readonly number[]): number {
  const sorted = [...list].sort((a, b) => a - b);
  return sorted.length % 2 === 1 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
}

export function addUp(rounds: RoundFigures[]): PathFigures {
  const all = rounds.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const sum = (f: (r: RoundFigures) => number): number => rounds.reduce((n, r) => n + f(r), 0);
  return {
    rounds,
    qps: median(rounds.map((r) => r.qps)),
    cpuMicrosPerQuery: (sum((r) => r.cpuSeconds) / sum((r) => r.completed)) * 1e6,
    p50: percentile(all, 50),
    p90: percentile(all, 90),
    p99: percentile(all, 99),
    lost: sum((r) => r.lost + r.latencyLost),
    errors: sum((r) => r.errors),
  };
}

export function roundLine(round: number, rounds: number, name: PathName, r: RoundFigures): string {
  const cpu = (r.cpuSeconds / r.completed) * 1e6;
  return `round ${round}/${rounds} ${name.padEnd(13)}${Math.round(r.qps).toString().padStart(8)} q/s ${cpu.toFixed(1).padStart(6)} µs CPU/q   p50 ${percentile(r.latencies, 50).toFixed(3)}  p99 ${percentile(r.latencies, 99).toFixed(3)} ms   lost ${r.lost}+${r.latencyLost} err ${r.errors}`;
}

const f3 = (n: number, width = 9): string => n.toFixed(3).padStart(width);

export function report(paths: Record<PathName, PathFigures>): string[] {
  const lines = [
    `${'path'.padEnd(14)}${'q/s'.padStart(8)}${'(min-max)'.padStart(16)}${'CPU µs/q'.padStart(10)}${'p50 ms'.padStart(9)}${'p90 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'+p50 ms'.padStart(9)}${'+p99 ms'.padStart(9)}${'lost'.padStart(6)}${'err'.padStart(5)}`,
  ];
  for (const name of PATH_NAMES) {
    const p = paths[name];
    const qps = p.rounds.map((r) => Math.round(r.qps));
    const direct = name.endsWith('miss') ? paths['direct miss'] : paths['direct hit'];
    const added = name === 'ceiling' || name.startsWith('direct') ? ''.padStart(18) : f3(p.p50 - direct.p50) + f3(p.p99 - direct.p99);
    lines.push(
      `${name.padEnd(14)}${Math.round(p.qps).toString().padStart(8)}${`(${Math.min(...qps)}-${Math.max(...qps)})`.padStart(16)}${p.cpuMicrosPerQuery.toFixed(1).padStart(10)}${f3(p.p50)}${f3(p.p90)}${f3(p.p99)}${added}${String(p.lost).padStart(6)}${String(p.errors).padStart(5)}`,
    );
  }
  lines.push("(+: added over direct, the origin asked the same names itself; percentiles over all rounds' latencies pooled; q/s the median round)");
  const list = (xs: readonly number[], digits: number): string => xs.map((x) => (Number.isNaN(x) ? 'lost' : x.toFixed(digits))).join(' / ');
  const measured = (xs: readonly number[]): number => {
    const kept = xs.filter((x) => !Number.isNaN(x));
    return kept.length === 0 ? NaN : median(kept);
  };
  const verdicts: string[] = [];
  for (const kind of ['hit', 'miss'] as const) {
    const [e, d, o] = [paths[`egressd ${kind}`], paths[`dnsmasq ${kind}`], paths[`direct ${kind}`]];
    const ratios = e.rounds.map((r, i) => r.qps / d.rounds[i]!.qps);
    // A round where either side lost queries at the fixed rate has the timeout for its p99: nothing to compare.
    const addedP99 = (p: PathFigures): number[] =>
      p.rounds.map((r, i) => (r.latencyLost + o.rounds[i]!.latencyLost > 0 ? NaN : percentile(r.latencies, 99) - percentile(o.rounds[i]!.latencies, 99)));
    const [addedE, addedD] = [addedP99(e), addedP99(d)];
    const label = kind === 'hit' ? 'cache hits' : 'forwarded misses';
    lines.push(
      `${label}: egressd/dnsmasq queries/s, median of rounds ${median(ratios).toFixed(2)} (per round ${list(ratios, 2)}); CPU per query egressd ${e.cpuMicrosPerQuery.toFixed(1)} µs, dnsmasq ${d.cpuMicrosPerQuery.toFixed(1)} µs (${(e.cpuMicrosPerQuery / d.cpuMicrosPerQuery).toFixed(2)}x)`,
      `${label}: p99 added over direct, pooled: egressd ${(e.p99 - o.p99).toFixed(3)} ms, dnsmasq ${(d.p99 - o.p99).toFixed(3)} ms; median of rounds without losses: egressd ${measured(addedE).toFixed(3)} ms (per round ${list(addedE, 3)}), dnsmasq ${measured(addedD).toFixed(3)} ms (per round ${list(addedD, 3)})`,
    );
    if (kind === 'hit') {
      verdicts.push(
        `target, cache hits at least ${TARGETS.hitRateRatio} of dnsmasq's queries/s (median of rounds): ${met(median(ratios) >= TARGETS.hitRateRatio)}`,
        `target, cache hits add under ${TARGETS.addedP99Ms} ms at p99: pooled ${addedVerdict(e.p99 - o.p99, TARGETS.addedP99Ms)}; median of rounds without losses ${Number.isNaN(measured(addedE)) ? 'not measurable (every round lost queries)' : addedVerdict(measured(addedE), TARGETS.addedP99Ms)}`,
      );
    }
  }
  return [...lines, ...verdicts];
}
