import { addedRatio, addedVerdict, fixed, latencyTable, medianAddedP99, met, processTable, type PathResult, type Percentile, type ProcessFigures } from './latency-report.ts';

/**
 * How the chain benchmark prints its run: the shared latency and process
 * tables, the ratio to HAProxy, and the targets beside the figures,
 * each stated as met or not.
 */
export type ChainPathName = 'direct' | 'egressd' | 'haproxy';

export interface ChainReport {
  rps: number;
  seconds: number;
  conns: number;
  rounds: number;
  paths: Record<ChainPathName, PathResult>;
  processes: ProcessFigures[];
  /** Audit records the gateway wrote during the run: proof the egressd path went through it. */
  gatewayRecords: number;
}

export const TARGETS = { addedP99Ms: 1, agentPeakRssMB: 60 } as const;

export function formatReport(r: ChainReport): string {
  const added = (name: 'egressd' | 'haproxy', key: Percentile): number => r.paths[name][key] - r.paths.direct[key];
  const agent = r.processes.find((p) => p.name === 'egressd agent');
  const agentMB = agent ? (agent.peakRssMiB * 1048576) / 1e6 : NaN;
  const egressdP99 = added('egressd', 'p99_ms');
  const medianP99 = medianAddedP99(r.paths.egressd, r.paths.direct);
  const lines = [
    `egress chain: ${r.rps} req/s for ${r.seconds}s per path (${r.rounds} interleaved rounds) over ${r.conns} keep-alive connections, 1 KiB bodies, HTTPS at the destination`,
    ...latencyTable(r.paths, ['direct', 'egressd', 'haproxy']),
    '',
    ...processTable(r.processes),
    '',
    `egressd added p50 / haproxy added p50: ${addedRatio(added('egressd', 'p50_ms'), added('haproxy', 'p50_ms'))}`,
    `egressd added p99 / haproxy added p99: ${addedRatio(egressdP99, added('haproxy', 'p99_ms'))}`,
    `target: egressd added p99 under ${TARGETS.addedP99Ms} ms: ${fixed(egressdP99, 0)} ms, ${addedVerdict(egressdP99, TARGETS.addedP99Ms)}`,
    `         the same as the median of the rounds' added p99: ${fixed(medianP99, 0)} ms, ${addedVerdict(medianP99, TARGETS.addedP99Ms)} (haproxy ${fixed(medianAddedP99(r.paths.haproxy, r.paths.direct), 0)} ms)`,
    `target: agent peak RSS under ${TARGETS.agentPeakRssMB} MB: ${agentMB.toFixed(1)} MB, ${met(agentMB < TARGETS.agentPeakRssMB)}`,
    `gateway audit records during the run: ${r.gatewayRecords}`,
  ];
  return `${lines.join('\n')}\n`;
}
