import { addedRatio, latencyTable, medianAddedP99, ratioVerdict, type PathResult, type Percentile, type ProcessFigures } from './latency-report.ts';

/**
 * How the agent-path benchmark prints its run: the shared latency table with
 * each path's bulk throughput beside it, egressd's added latency as a ratio of
 * HAProxy's against the target and as a ratio of a bare Node.js
 * forwarder's (what the runtime alone adds here), and CPU and peak RSS.
 */
export type AgentPathName = 'direct' | 'egressd' | 'haproxy' | 'node';

/** Bulk streams of one path, summed: throughput is total bytes over total time. */
export interface BulkFigures {
  bytes: number;
  seconds: number;
}

export interface AgentPathReport {
  rps: number;
  seconds: number;
  conns: number;
  rounds: number;
  client: 'node' | 'h2load';
  bulkMib: number;
  paths: Record<AgentPathName, PathResult>;
  bulk: Record<AgentPathName, BulkFigures>;
  processes: ProcessFigures[];
}

/** The target for the transparent path: egressd adds less than twice what a TCP forwarder adds. */
export const TARGETS = { addedP99RatioToHaproxy: 2 } as const;

const mibPerSecond = (b: BulkFigures): number => b.bytes / 1048576 / b.seconds;

export function formatAgentPathReport(r: AgentPathReport): string {
  const added = (name: Exclude<AgentPathName, 'direct'>, key: Percentile): number => r.paths[name][key] - r.paths.direct[key];
  const bulk = (name: AgentPathName): number => mibPerSecond(r.bulk[name]);
  const proc = (name: string): string => {
    const p = r.processes.find((x) => x.name === name);
    return p ? `${p.cpuPer1k.toFixed(3)} CPU s per 1,000 requests, peak RSS ${p.peakRssMiB.toFixed(1)} MiB` : 'not measured';
  };
  const median = {
    egressd: medianAddedP99(r.paths.egressd, r.paths.direct),
    haproxy: medianAddedP99(r.paths.haproxy, r.paths.direct),
    node: medianAddedP99(r.paths.node, r.paths.direct),
  };
  const lines = [
    `agent path, ${r.rps} req/s for ${r.seconds}s per path (${r.rounds} interleaved rounds) over ${r.conns} keep-alive connections (1 KiB bodies, load from ${r.client === 'h2load' ? 'h2load' : 'the Node client'}); bulk ${r.bulkMib} MiB per path in ${r.rounds} interleaved streams`,
    ...latencyTable(r.paths, ['direct', 'egressd', 'haproxy', 'node'], [{ header: 'MiB/s', width: 8, cell: (name) => bulk(name).toFixed(0) }]),
    '',
    `egressd added p50 / haproxy added p50: ${addedRatio(added('egressd', 'p50_ms'), added('haproxy', 'p50_ms'))}`,
    `egressd added p99 / haproxy added p99: ${addedRatio(added('egressd', 'p99_ms'), added('haproxy', 'p99_ms'))}   (target: under ${TARGETS.addedP99RatioToHaproxy}x: ${ratioVerdict(added('egressd', 'p99_ms'), added('haproxy', 'p99_ms'), TARGETS.addedP99RatioToHaproxy)})`,
    `added p99, median of the rounds: egressd ${median.egressd.toFixed(3)} ms, haproxy ${median.haproxy.toFixed(3)} ms; ratio ${addedRatio(median.egressd, median.haproxy)}   (target: under ${TARGETS.addedP99RatioToHaproxy}x: ${ratioVerdict(median.egressd, median.haproxy, TARGETS.addedP99RatioToHaproxy)})`,
    `against a bare Node.js forwarder (node: pipe() both ways): egressd added p99 / node added p99 ${addedRatio(added('egressd', 'p99_ms'), added('node', 'p99_ms'))}, median of the rounds ${addedRatio(median.egressd, median.node)} (node ${median.node.toFixed(3)} ms)`,
    `bulk throughput egressd / direct: ${(bulk('egressd') / bulk('direct')).toFixed(2)}, haproxy / direct: ${(bulk('haproxy') / bulk('direct')).toFixed(2)}, node / direct: ${(bulk('node') / bulk('direct')).toFixed(2)}`,
    `egressd agent: ${proc('egressd agent')}; haproxy: ${proc('haproxy')}; node forwarder: ${proc('node forwarder')}`,
  ];
  return `${lines.join('\n')}\n`;
}
