/**
 * The agent's transparent path against a direct connection and against
 * HAProxy (Debian's) as a plain TCP forwarder, side by side in one run, in
 * real network namespaces (needs root, iptables, haproxy):
 *
 *   direct   app as UID 1337 (never redirected)       -> internet 10.77.0.1:8080
 *   egressd  app as UID 1000, iptables -> agent 15001 -> internet 10.77.0.1:8080
 *   haproxy  app as UID 1000 -> 127.0.0.1:18080 haproxy (UID 1337, mode tcp) -> internet
 *
 * For each: p50/p90/p99 latency of 1 KiB GETs at a fixed rate over keep-alive
 * connections, and the throughput of one bulk stream. Prints the overheads
 * over direct and egressd's overhead as a ratio of HAProxy's.
 *
 *   node --import tsx bench/agent-path.bench.ts [--rps 1000] [--seconds 10] [--conns 16] [--bulk-mib 256]
 */
import { mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  canRunNetns,
  createPodInternet,
  mustExecInNetns,
  spawnInNetns,
  spawnNodeInNetns,
  waitForListen,
  TSX_ARGS,
  type TeardownHost,
} from '../src/lab/index.ts';

const { values } = parseArgs({
  options: { rps: { type: 'string', default: '1000' }, seconds: { type: 'string', default: '10' }, conns: { type: 'string', default: '16' }, 'bulk-mib': { type: 'string', default: '256' } },
});
const RPS = Number(values.rps);
const SECONDS = Number(values.seconds);
const CONNS = Number(values.conns);
const BULK_MIB = Number(values['bulk-mib']);
const APP_UID = 1000;
const AGENT_UID = 1337;
const PORT = 8080;
const HAPROXY_PORT = 18080;

interface RateResult { requests: number; errors: number; achieved_rps: number; p50_ms: number; p90_ms: number; p99_ms: number }
interface BulkResult { bytes: number; seconds: number; mib_per_s: number }

const teardowns: Array<() => unknown> = [];
const td: TeardownHost = { teardown: (fn) => void teardowns.push(fn) };

async function cleanup(): Promise<void> {
  for (const fn of teardowns.reverse()) await fn();
}

/** CPU seconds (user+system) and peak RSS (MiB) of a process, from /proc. */
async function usage(pid: number): Promise<{ cpu: number; peakRssMiB: number }> {
  const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  const ticks = Number(stat[11]) + Number(stat[12]);
  const hwm = /VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1];
  return { cpu: ticks / 100, peakRssMiB: Number(hwm) / 1024 };
}

async function main(): Promise<number> {
  const can = await canRunNetns('egb-');
  if (!can.ok) {
    process.stderr.write(`agent-path bench needs network namespaces: ${can.reason}\n`);
    return 1;
  }
  const topo = await createPodInternet(td, 'egb-');
  const upstream = spawnNodeInNetns(td, topo.internet, [...TSX_ARGS, 'bench/lib/upstream-server.ts', '0.0.0.0', String(PORT)]);
  await upstream.waitForLine((line) => line.includes('listening'));

  const dir = await mkdtemp(join(tmpdir(), 'egressd-bench-'));
  td.teardown(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o755);
  await writeFile(
    join(dir, 'upstream.yaml'),
    `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: bench-upstream, namespace: default }
spec:
  hosts: [bench-upstream.internal]
  addresses: [${topo.internetIp}/32]
  ports: [{ number: ${PORT}, name: http, protocol: HTTP }]
  resolution: NONE
  location: MESH_EXTERNAL
`,
  );
  await writeFile(
    join(dir, 'haproxy.cfg'),
    `global\n  maxconn 4096\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\nfrontend app\n  bind 127.0.0.1:${HAPROXY_PORT}\n  default_backend internet\nbackend internet\n  server upstream ${topo.internetIp}:${PORT}\n`,
  );
  await mustExecInNetns(topo.pod, process.execPath, ['bin/egressd.js', 'init']);
  const agent = spawnNodeInNetns(td, topo.pod, ['bin/egressd.js', 'agent', '--config-dir', dir, '--log-level', 'warn'], { uid: AGENT_UID });
  const haproxy = spawnInNetns(td, topo.pod, 'haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')], { uid: AGENT_UID });
  await waitForListen(topo.pod, 15001);
  await waitForListen(topo.pod, HAPROXY_PORT);

  const paths = [
    { name: 'direct', uid: AGENT_UID, host: topo.internetIp, port: PORT },
    { name: 'egressd', uid: APP_UID, host: topo.internetIp, port: PORT },
    { name: 'haproxy', uid: APP_UID, host: '127.0.0.1', port: HAPROXY_PORT },
  ];
  const results: Record<string, { rate: RateResult; bulk: BulkResult }> = {};
  let agentBefore = await usage(agent.pid);
  let agentCpuPer1k = NaN;
  for (const path of paths) {
    const client = async (args: string[]): Promise<string> =>
      mustExecInNetns(topo.pod, process.execPath, [...TSX_ARGS, 'bench/lib/load-client.ts', ...args], { uid: path.uid, timeoutMs: (SECONDS + 120) * 1000 });
    if (path.name === 'egressd') agentBefore = await usage(agent.pid);
    const rate = JSON.parse(await client(['rate', path.host, String(path.port), String(RPS), String(SECONDS), String(CONNS)])) as RateResult;
    if (path.name === 'egressd') agentCpuPer1k = (((await usage(agent.pid)).cpu - agentBefore.cpu) / rate.requests) * 1000;
    const bulk = JSON.parse(await client(['bulk', path.host, String(path.port), String(BULK_MIB)])) as BulkResult;
    results[path.name] = { rate, bulk };
    process.stderr.write(`${path.name}: done\n`);
  }
  const agentUsage = await usage(agent.pid);
  const haproxyUsage = await usage(haproxy.pid);

  const d = results.direct!;
  const row = (name: string): string => {
    const r = results[name]!;
    const f = (n: number): string => n.toFixed(3).padStart(8);
    return `${name.padEnd(8)} ${f(r.rate.p50_ms)} ${f(r.rate.p90_ms)} ${f(r.rate.p99_ms)}   +${f(r.rate.p50_ms - d.rate.p50_ms)} +${f(r.rate.p99_ms - d.rate.p99_ms)}  ${r.rate.achieved_rps.toFixed(0).padStart(6)} ${String(r.rate.errors).padStart(4)}  ${r.bulk.mib_per_s.toFixed(0).padStart(7)}`;
  };
  const over = (name: string, key: 'p50_ms' | 'p99_ms'): number => results[name]!.rate[key] - d.rate[key];
  const out = [
    `agent path, ${RPS} req/s for ${SECONDS}s over ${CONNS} keep-alive connections (1 KiB bodies); one bulk stream of ${BULK_MIB} MiB`,
    `path        p50 ms   p90 ms   p99 ms   added p50  added p99    req/s  err  MiB/s`,
    row('direct'),
    row('egressd'),
    row('haproxy'),
    '',
    `egressd added p50 / haproxy added p50: ${(over('egressd', 'p50_ms') / over('haproxy', 'p50_ms')).toFixed(2)}x`,
    `egressd added p99 / haproxy added p99: ${(over('egressd', 'p99_ms') / over('haproxy', 'p99_ms')).toFixed(2)}x   (target: under 2x)`,
    `bulk throughput egressd / direct: ${(results.egressd!.bulk.mib_per_s / d.bulk.mib_per_s).toFixed(2)}, haproxy / direct: ${(results.haproxy!.bulk.mib_per_s / d.bulk.mib_per_s).toFixed(2)}`,
    `egressd agent: ${agentCpuPer1k.toFixed(3)} CPU s per 1,000 requests, peak RSS ${agentUsage.peakRssMiB.toFixed(1)} MiB; haproxy peak RSS ${haproxyUsage.peakRssMiB.toFixed(1)} MiB`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

try {
  process.exitCode = await main();
} finally {
  await cleanup();
}
