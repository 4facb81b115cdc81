import { readFile } from 'node:fs/promises';

/**
 * What the chain benchmark reads from /proc and how it prints it: one table
 * of latencies with the added latency over direct, the processes' CPU and
 * peak memory, the ratio to HAProxy, and the issue's targets beside the
 * figures, each stated as met or not.
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

function percentile(sorted: readonly number[], p: number): number {
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

/** CPU seconds so far (user + system) and peak RSS (VmHWM) of a process. */
export interface Usage {
  cpuSeconds: number;
  peakRssMiB: number;
}

export async function usage(pid: number): Promise<Usage> {
  // Fields after the command name, which may hold spaces: utime and stime are the 12th and 13th.
  const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  const ticks = Number(stat[11]) + Number(stat[12]);
  const hwm = /VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1];
  // USER_HZ is 100 on every Linux this runs on (sysconf(_SC_CLK_TCK) is not reachable from Node).
  return { cpuSeconds: ticks / 100, peakRssMiB: Number(hwm) / 1024 };
}

export interface ProcessFigures {
  name: string;
  /** CPU seconds per 1,000 requests during its own path's run. */
  cpuPer1k: number;
  peakRssMiB: number;
}

export interface ChainReport {
  rps: number;
  seconds: number;
  conns: number;
  rounds: number;
  paths: Record<'direct' | 'egressd' | 'haproxy', PathResult>;
  processes: ProcessFigures[];
  /** Audit records the gateway wrote during the run: proof the egressd path went through it. */
  gatewayRecords: number;
}

export const TARGETS = { addedP99Ms: 1, agentPeakRssMB: 60 } as const;

const f = (n: number, width = 8): string => n.toFixed(3).padStart(width);
const met = (ok: boolean): string => (ok ? 'met' : 'NOT met');

/** A ratio of added latencies; HAProxy's at or below zero (direct slower in this run) makes none. */
function ratio(egressd: number, haproxy: number): string {
  return haproxy > 0 ? `${(egressd / haproxy).toFixed(2)}x` : `n/a (haproxy added ${haproxy.toFixed(3)} ms: within this run's noise)`;
}

/** Added latency against its target; a negative one means direct was slower in this run (noise), which proves nothing. */
function addedVerdict(added: number, target: number): string {
  if (!(added >= 0)) return 'not measurable in this run (direct was slower: noise; run again or longer)';
  return met(added < target);
}

export function formatReport(r: ChainReport): string {
  const d = r.paths.direct;
  const added = (name: 'egressd' | 'haproxy', key: 'p50_ms' | 'p90_ms' | 'p99_ms'): number => r.paths[name][key] - d[key];
  const row = (name: keyof ChainReport['paths']): string => {
    const p = r.paths[name];
    const extra = name === 'direct' ? `${''.padStart(10)}${''.padStart(10)}${''.padStart(10)}` : `${f(added(name, 'p50_ms'), 10)}${f(added(name, 'p90_ms'), 10)}${f(added(name, 'p99_ms'), 10)}`;
    return `${name.padEnd(8)}${f(p.p50_ms)}${f(p.p90_ms)}${f(p.p99_ms)}${extra}${p.achieved_rps.toFixed(0).padStart(8)}${String(p.errors).padStart(6)}`;
  };
  const agent = r.processes.find((p) => p.name === 'egressd agent');
  const agentMB = agent ? (agent.peakRssMiB * 1048576) / 1e6 : NaN;
  const egressdP99 = added('egressd', 'p99_ms');
  const lines = [
    `egress chain: ${r.rps} req/s for ${r.seconds}s per path (${r.rounds} interleaved rounds) over ${r.conns} keep-alive connections, 1 KiB bodies, HTTPS at the destination`,
    `${'path'.padEnd(8)}${['p50 ms', 'p90 ms', 'p99 ms'].map((h) => h.padStart(8)).join('')}${['+p50 ms', '+p90 ms', '+p99 ms'].map((h) => h.padStart(10)).join('')}${'req/s'.padStart(8)}${'err'.padStart(6)}   (+: added over direct)`,
    row('direct'),
    row('egressd'),
    row('haproxy'),
    `p99 per round, ms: ${(['direct', 'egressd', 'haproxy'] as const).map((name) => `${name} ${r.paths[name].roundP99s.map((p) => p.toFixed(1)).join('/')}`).join(';  ')}`,
    '',
    `process                 CPU s / 1k req   peak RSS MiB`,
    ...r.processes.map((p) => `${p.name.padEnd(24)}${p.cpuPer1k.toFixed(3).padStart(14)}${p.peakRssMiB.toFixed(1).padStart(15)}`),
    '',
    `egressd added p50 / haproxy added p50: ${ratio(added('egressd', 'p50_ms'), added('haproxy', 'p50_ms'))}`,
    `egressd added p99 / haproxy added p99: ${ratio(egressdP99, added('haproxy', 'p99_ms'))}`,
    `target: egressd added p99 under ${TARGETS.addedP99Ms} ms: ${f(egressdP99, 0)} ms, ${addedVerdict(egressdP99, TARGETS.addedP99Ms)}`,
    `target: agent peak RSS under ${TARGETS.agentPeakRssMB} MB: ${agentMB.toFixed(1)} MB, ${met(agentMB < TARGETS.agentPeakRssMB)}`,
    `gateway audit records during the run: ${r.gatewayRecords}`,
  ];
  return `${lines.join('\n')}\n`;
}
