/**
 * The agent's transparent path against a direct connection and against
 * HAProxy (Debian's) as a plain TCP forwarder, side by side in one run, in
 * real network namespaces (needs root, iptables, haproxy, curl):
 *
 *   direct   app as UID 1337 (never redirected)       -> internet 10.77.0.1:8080
 *   egressd  app as UID 1000, iptables -> agent 15001 -> internet 10.77.0.1:8080
 *   haproxy  app as UID 1000 -> 127.0.0.1:18080 haproxy (UID 1337, mode tcp) -> internet
 *
 * For each, after --warmup seconds of the same load: p50/p90/p99 of 1 KiB GETs
 * at a fixed rate over keep-alive connections (no coordinated omission), over
 * --seconds split into --rounds rounds in which the paths take turns, and the
 * latency added over direct; then the throughput of --bulk-mib MiB read as
 * --rounds bulk streams, again taking turns. Prints egressd's added latency as
 * a ratio of HAProxy's, and the agent's CPU per 1,000 requests and peak RSS.
 *
 *   node --import tsx bench/agent-path.bench.ts [--rps 1000] [--seconds 10] [--conns 16] [--bulk-mib 256] [--warmup 3] [--rounds 5]
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { productionAgentArgs, productionEnv } from '../scripts/build.ts';
import { canRunNetns, createPodInternet, mustExecInNetns, spawnInNetns, spawnNodeInNetns, TSX_ARGS, waitForListen, withTeardown, type TeardownStack } from '../src/lab/index.ts';
import { formatAgentPathReport, type AgentPathName, type BulkFigures } from './lib/agent-path-report.ts';
import { cpuPlacement, describePlacement, pinProcess } from './lib/cpu-pinning.ts';
import { interleave, loadClient, LOAD_FLAG_OPTIONS, measureLatency, readLoadFlags, type LoadPath } from './lib/latency-rounds.ts';

const PREFIX = 'egb-';
const APP_UID = 1000;
const AGENT_UID = 1337;
const PORT = 8080;
const HAPROXY_PORT = 18080;
const NODE_FORWARDER_PORT = 18081;

const { values } = parseArgs({ options: { ...LOAD_FLAG_OPTIONS, 'bulk-mib': { type: 'string', default: '256' } } });
const { flags: FLAGS, bad } = readLoadFlags(values);
const BULK_MIB = Number(values['bulk-mib']);
const BAD_FLAGS = bad.concat(Number.isInteger(BULK_MIB) && BULK_MIB >= FLAGS.rounds ? [] : ['--bulk-mib must be a whole number, at least --rounds']);

interface BulkResult {
  bytes: number;
  seconds: number;
}

function allowlist(internetIp: string): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: bench-upstream, namespace: default }
spec:
  hosts: [bench-upstream.internal]
  addresses: [${internetIp}/32]
  ports: [{ number: ${PORT}, name: http, protocol: HTTP }]
  resolution: NONE
  location: MESH_EXTERNAL
`;
}

function haproxyConfig(internetIp: string): string {
  return [
    'global',
    '  maxconn 4096',
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 60s',
    '  timeout server 60s',
    'frontend app',
    `  bind 127.0.0.1:${HAPROXY_PORT}`,
    '  default_backend internet',
    'backend internet',
    `  server upstream ${internetIp}:${PORT}`,
    '',
  ].join('\n');
}

async function run(td: TeardownStack): Promise<number> {
  if (BAD_FLAGS.length > 0) {
    process.stderr.write(`agent-path bench: bad flags: ${BAD_FLAGS.join('; ')}\n`);
    return 2;
  }
  const can = await canRunNetns(PREFIX);
  if (!can.ok) {
    process.stderr.write(`agent-path bench needs network namespaces: ${can.reason}\n`);
    return 1;
  }
  const topo = await createPodInternet(td, PREFIX);
  const upstream = spawnNodeInNetns(td, topo.internet, [...TSX_ARGS, 'bench/lib/upstream-server.ts', '0.0.0.0', String(PORT)]);
  await upstream.waitForLine((line) => line.includes('listening'), { timeoutMs: 60_000 });

  const dir = await mkdtemp(join(tmpdir(), 'egressd-bench-agent-'));
  td.teardown(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o755);
  await writeFile(join(dir, 'upstream.yaml'), allowlist(topo.internetIp), { mode: 0o644 });
  await writeFile(join(dir, 'haproxy.cfg'), haproxyConfig(topo.internetIp), { mode: 0o644 });
  await mustExecInNetns(topo.pod, process.execPath, ['bin/egressd.js', 'init']);
  const agent = spawnNodeInNetns(td, topo.pod, [...(await productionAgentArgs()), '--config-dir', dir, '--log-level', 'warn'], { uid: AGENT_UID, env: productionEnv() });
  const haproxy = spawnInNetns(td, topo.pod, 'haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')], { uid: AGENT_UID });
  const forwarder = spawnNodeInNetns(td, topo.pod, [...TSX_ARGS, 'bench/lib/node-forwarder.ts', String(NODE_FORWARDER_PORT), topo.internetIp, String(PORT)], { uid: AGENT_UID });
  await waitForListen(topo.pod, 15001, { timeoutMs: 60_000 });
  await waitForListen(topo.pod, HAPROXY_PORT);
  await forwarder.waitForLine((line) => line.includes('listening'), { timeoutMs: 60_000 });
  const cpus = cpuPlacement();
  await pinProcess(upstream.pid, cpus?.load);
  for (const proxy of [agent, haproxy, forwarder]) await pinProcess(proxy.pid, cpus?.proxy);
  process.stderr.write(`${describePlacement(cpus)}\n`);

  const upstreamUrl = `http://${topo.internetIp}:${PORT}/1k`;
  const paths: Array<LoadPath<AgentPathName>> = [
    { name: 'direct', ns: topo.pod, uid: AGENT_UID, host: topo.internetIp, port: PORT, extra: [], curl: [upstreamUrl], pids: [] },
    { name: 'egressd', ns: topo.pod, uid: APP_UID, host: topo.internetIp, port: PORT, extra: [], curl: [upstreamUrl], pids: [{ name: 'egressd agent', pid: agent.pid }] },
    {
      name: 'haproxy', ns: topo.pod, uid: APP_UID, host: '127.0.0.1', port: HAPROXY_PORT, extra: [],
      curl: [`http://127.0.0.1:${HAPROXY_PORT}/1k`], pids: [{ name: 'haproxy', pid: haproxy.pid }],
    },
    {
      name: 'node', ns: topo.pod, uid: APP_UID, host: '127.0.0.1', port: NODE_FORWARDER_PORT, extra: [],
      curl: [`http://127.0.0.1:${NODE_FORWARDER_PORT}/1k`], pids: [{ name: 'node forwarder', pid: forwarder.pid }],
    },
  ];
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const latency = await measureLatency(paths, FLAGS, log);

  const streamMib = Math.round(BULK_MIB / FLAGS.rounds);
  const streams = await interleave(paths, FLAGS.rounds, async (path, i) => {
    const result = await loadClient<BulkResult>(path, ['bulk', path.host, String(path.port), String(streamMib)], 600);
    log(`bulk ${i + 1}/${FLAGS.rounds} ${path.name}: ${(result.bytes / 1048576 / result.seconds).toFixed(0)} MiB/s`);
    return result;
  });
  const bulk = Object.fromEntries(
    paths.map((p) => [p.name, streams.get(p.name)!.reduce<BulkFigures>((sum, s) => ({ bytes: sum.bytes + s.bytes, seconds: sum.seconds + s.seconds }), { bytes: 0, seconds: 0 })]),
  ) as Record<AgentPathName, BulkFigures>;

  process.stdout.write(formatAgentPathReport({ ...FLAGS, bulkMib: streamMib * FLAGS.rounds, paths: latency.paths, bulk, processes: latency.processes }));
  return 0;
}

process.exitCode = await withTeardown(run, (message) => process.stderr.write(`${message}\n`));
