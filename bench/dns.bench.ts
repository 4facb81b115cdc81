/**
 * The DNS proxy side by side with dnsmasq on loopback, in one run:
 *
 *   direct   client -> origin                      (dnsmasq answering *.bench.test itself: the floor)
 *   dnsmasq  client -> dnsmasq (cache)   -> origin
 *   egressd  client -> egressd DNS proxy -> origin (allowlist *.bench.test, judged on every query)
 *   ceiling  client -> a Node process answering a fixed record (the most a Node UDP server does here)
 *
 * For cache hits (100 names asked over and over) and forwarded misses (a new
 * name every query): queries per second with --inflight outstanding, the
 * server's CPU per query, and p50/p90/p99 at --rate queries a second, all
 * measured by dnsperf. Two CPUs shared with other work make the figures
 * move, so: the client runs on one CPU and every server on the other
 * (--pin client,server; `off` to run unpinned), every path first gets a
 * warm-up, then --rounds rounds of --seconds per measurement: the latency
 * runs of cache hits on every path at the same time (each path its own
 * dnsperf), those of misses and the throughput runs one path at a time
 * (their order rotated each round). Every round is printed, percentiles
 * are taken over all rounds' latencies, queries/s is the median round, and
 * the latency added over direct is judged against issue 6.
 *
 *   node --import tsx bench/dns.bench.ts [--seconds 2] [--rounds 5] [--inflight 32] [--rate 2000] [--warmup 1] [--pin 0,1]
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { dnsperfMissing, latencies, throughput, type Names } from './lib/dns-load.ts';
import { startPeers, type DnsPeer, type DnsPeers } from './lib/dns-peers.ts';
import { addUp, PATH_NAMES, report, roundLine, type PathFigures, type PathName, type RoundFigures } from './lib/dns-report.ts';
import { usage } from './lib/latency-rounds.ts';
import { AGENT_NODE_FLAGS } from '../src/agent/node-flags.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '5' },
    inflight: { type: 'string', default: '32' },
    rate: { type: 'string', default: '2000' },
    warmup: { type: 'string', default: '1' },
    pin: { type: 'string', default: '0,1' },
  },
});
const [seconds, rounds, inflight, rate, warmup] = (['seconds', 'rounds', 'inflight', 'rate', 'warmup'] as const).map((k) => Number(values[k]));
const pins = values.pin === 'off' ? undefined : values.pin!.split(',').map(Number);
const problems = [
  ...(['seconds', 'rounds', 'inflight', 'rate'] as const).filter((k) => !(Number(values[k]) > 0)).map((k) => `--${k} must be a positive number`),
  ...(warmup! >= 0 ? [] : ['--warmup must be 0 or more']),
  ...(pins === undefined || (pins.length === 2 && pins.every((c) => Number.isInteger(c) && c >= 0 && c < availableParallelism()) && pins[0] !== pins[1])
    ? []
    : [`--pin must be two different CPUs below ${availableParallelism()} (client,server) or off`]),
  ...[dnsperfMissing()].filter((p) => p !== undefined),
];
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(2);
}
const [clientCpu, serverCpu] = pins ?? [undefined, undefined];

const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

/** Which server answers a path, and which names it is asked. */
function paths(peers: DnsPeers): Record<PathName, { peer: DnsPeer; names: Names }> {
  return {
    ceiling: { peer: peers.echo, names: 'hit' },
    'direct hit': { peer: peers.origin, names: 'hit' },
    'dnsmasq hit': { peer: peers.dnsmasq, names: 'hit' },
    'egressd hit': { peer: peers.egressd, names: 'hit' },
    'direct miss': { peer: peers.origin, names: 'miss' },
    'dnsmasq miss': { peer: peers.dnsmasq, names: 'miss' },
    'egressd miss': { peer: peers.egressd, names: 'miss' },
  };
}

async function measureLatency(peer: DnsPeer, names: Names): Promise<Pick<RoundFigures, 'latencies' | 'latencyLost' | 'errors'>> {
  const fixed = await latencies(clientCpu, peer.port, names, seconds!, rate!);
  return { latencies: fixed.latencies.sort((a, b) => a - b), latencyLost: fixed.lost, errors: fixed.errors };
}

async function measureThroughput(peer: DnsPeer, names: Names): Promise<Pick<RoundFigures, 'qps' | 'cpuSeconds' | 'completed' | 'lost'>> {
  const before = await usage(peer.pid);
  const max = await throughput(clientCpu, peer.port, names, seconds!, inflight!);
  const after = await usage(peer.pid);
  return { qps: max.qps, cpuSeconds: after.cpuSeconds - before.cpuSeconds, completed: max.completed, lost: max.lost };
}

const HIT_PATHS = PATH_NAMES.filter((n) => !n.endsWith('miss'));
const MISS_PATHS = PATH_NAMES.filter((n) => n.endsWith('miss'));

/** The paths of each kind, hits then misses, each group rotated by the round: no peer always goes first. */
function order(round: number): PathName[] {
  const rotate = (list: PathName[]): PathName[] => list.map((_, i) => list[(i + round) % list.length]!);
  return [...rotate(HIT_PATHS), ...rotate(MISS_PATHS)];
}

async function main(): Promise<void> {
  const peers = await startPeers(serverCpu);
  try {
    const plan = paths(peers);
    console.log(
      `DNS proxy benchmark (dnsperf): per round ${seconds} s at ${rate}/s (latency: hit paths at once, miss paths in turn), then ${seconds} s at ${inflight} in flight (queries/s, paths in turn); ${rounds} rounds after a ${warmup} s warm-up; ${pins === undefined ? 'unpinned' : `client on CPU ${clientCpu}, servers on CPU ${serverCpu}`}; the Node peers bundled, with the agent's flags ${AGENT_NODE_FLAGS.join(' ')}; load average ${loadavg()}`,
    );
    // Fills both caches with the hit names and warms every process's code paths.
    if (warmup! > 0) for (const name of PATH_NAMES) await throughput(clientCpu, plan[name].peer.port, plan[name].names, warmup!, inflight!);
    const results = new Map<PathName, RoundFigures[]>(PATH_NAMES.map((n) => [n, []]));
    for (let round = 0; round < rounds!; round++) {
      // Latency of cache hits: every path at the same time, so that a burst of the machine's other work lands on all
      // of them alike and the p99 one adds over direct is not one path's bad luck (the four together take under a
      // tenth of the servers' CPU). Misses cost a forwarder 100-200 µs of CPU each, so together they would measure
      // each other: one path at a time.
      const fixed = new Map<PathName, Awaited<ReturnType<typeof measureLatency>>>();
      const hits = await Promise.all(HIT_PATHS.map((name) => measureLatency(plan[name].peer, plan[name].names)));
      HIT_PATHS.forEach((name, i) => fixed.set(name, hits[i]!));
      for (const name of order(round).filter((n) => MISS_PATHS.includes(n))) fixed.set(name, await measureLatency(plan[name].peer, plan[name].names));
      for (const name of order(round)) {
        const max = await measureThroughput(plan[name].peer, plan[name].names);
        const figures: RoundFigures = { ...max, ...fixed.get(name)! };
        results.get(name)!.push(figures);
        console.log(roundLine(round + 1, rounds!, name, figures));
      }
    }
    const added = Object.fromEntries(PATH_NAMES.map((n) => [n, addUp(results.get(n)!)])) as Record<PathName, PathFigures>;
    for (const line of report(added)) console.log(line);
    console.log(`load average at the end ${loadavg()}`);
  } finally {
    await peers.stop();
  }
}

await main();
