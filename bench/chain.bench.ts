/**
 * The egress chain end to end, against a direct connection and against the
 * same chain built from HAProxy (Debian's), side by side in one run, in
 * network namespaces of our own (needs root, iptables, haproxy, curl):
 *
 *   pod 10.79.1.2 ── 10.79.1.1 gw 10.79.2.1 ── 10.79.2.2 internet (HTTPS, its own CA, 1 KiB bodies)
 *
 *   direct   client in gw, HTTPS straight to the server (gw is the only namespace that reaches it)
 *   egressd  app in the pod (UID 1000), plain HTTP to api.example.test:80 -> egressd init's iptables
 *            -> egressd agent (UID 1337, certificate from egressd control-plane, --egress-gateway)
 *            -> egressd gateway in gw (mTLS HTTP/2 tunnel) -> TLS origination -> server
 *   haproxy  app in the pod (UID 1000), plain HTTP to 127.0.0.1 -> HAProxy (UID 1337, mode tcp)
 *            -> mTLS -> HAProxy in gw (mode http) -> TLS origination -> server
 *
 * For each, after --warmup seconds of the same load: p50/p90/p99 of GETs at a
 * fixed rate over keep-alive connections (no coordinated omission), over
 * --seconds split into --rounds rounds in which the paths take turns, and the
 * latency added over direct; CPU seconds per 1,000 requests and peak RSS of
 * the agent, the gateway and both HAProxies.
 *
 *   node --import tsx bench/chain.bench.ts [--seconds 10] [--rps 1000] [--conns 16] [--warmup 3] [--rounds 5] [--client node|h2load]
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cpuPlacement, describePlacement, pinProcess } from './lib/cpu-pinning.ts';
import { canRunNetns, spawnNodeInNetns, TSX_ARGS, withTeardown, type TeardownStack } from '../src/lab/index.ts';
import { startEgressdChain } from './lib/chain-egressd.ts';
import { startHaproxyChain } from './lib/chain-haproxy.ts';
import { CHAIN, createChainLab } from './lib/chain-lab.ts';
import { writeChainPki } from './lib/chain-pki.ts';
import { formatReport, type ChainPathName } from './lib/chain-report.ts';
import { LOAD_FLAG_OPTIONS, measureLatency, readLoadFlags, type LoadPath } from './lib/latency-rounds.ts';

const PREFIX = 'egk-';
const APP_UID = 1000;
const AGENT_UID = 1337;

const { values } = parseArgs({ options: LOAD_FLAG_OPTIONS });
const { flags: FLAGS, bad: BAD_FLAGS } = readLoadFlags(values);
// Unpinned unless asked (BENCH_PIN=on): pinned, the direct path's HTTPS client and server share one
// CPU and its TLS alone made direct's p99 3x what it is when the scheduler places them (20 vs 6 ms),
// so the latency "added" over it came out negative for both chains.
process.env.BENCH_PIN ??= 'off';

async function run(td: TeardownStack): Promise<number> {
  if (BAD_FLAGS.length > 0) {
    process.stderr.write(`chain bench: bad flags: ${BAD_FLAGS.join('; ')}\n`);
    return 2;
  }
  const can = await canRunNetns(PREFIX);
  if (!can.ok) {
    process.stderr.write(`chain bench needs network namespaces: ${can.reason}\n`);
    return 1;
  }
  const dir = await mkdtemp(join(tmpdir(), 'egressd-bench-chain-'));
  td.teardown(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o755);
  const lab = await createChainLab(td, PREFIX);
  const pki = await writeChainPki(dir);

  const server = spawnNodeInNetns(td, lab.internet, [...TSX_ARGS, 'bench/lib/upstream-server.ts', CHAIN.serverIp, String(CHAIN.serverPort), pki.server.cert, pki.server.key]);
  await server.waitForLine((line) => line.includes('listening'), { timeoutMs: 60_000 });
  const haproxy = await startHaproxyChain(td, lab, pki, dir, AGENT_UID);
  const egressd = await startEgressdChain(td, lab, pki, dir, AGENT_UID);
  const cpus = cpuPlacement();
  await pinProcess(server.pid, cpus?.load);
  for (const proxy of [haproxy.pod, haproxy.gw, egressd.agent, egressd.gateway]) await pinProcess(proxy.pid, cpus?.proxy);
  process.stderr.write(`chain up: server, haproxies, control plane, gateway, agent; ${describePlacement(cpus)}\n`);

  const paths: Array<LoadPath<ChainPathName>> = [
    {
      name: 'direct', ns: lab.gw, host: CHAIN.host, port: CHAIN.serverPort, https: true, extra: ['--https', '--ca', pki.internetCa],
      curl: ['--cacert', pki.internetCa, `https://${CHAIN.host}/1k`], pids: [],
    },
    {
      name: 'egressd', ns: lab.pod, uid: APP_UID, host: CHAIN.host, port: CHAIN.appPort, extra: [],
      curl: [`http://${CHAIN.host}/1k`], pids: [{ name: 'egressd agent', pid: egressd.agent.pid }, { name: 'egressd gateway', pid: egressd.gateway.pid }],
    },
    {
      name: 'haproxy', ns: lab.pod, uid: APP_UID, host: '127.0.0.1', port: CHAIN.haproxyPodPort, extra: [],
      curl: [`http://127.0.0.1:${CHAIN.haproxyPodPort}/1k`], pids: [{ name: 'haproxy (pod)', pid: haproxy.pod.pid }, { name: 'haproxy (gw)', pid: haproxy.gw.pid }],
    },
  ];
  const { paths: results, processes } = await measureLatency(paths, FLAGS, (line) => process.stderr.write(`${line}\n`));
  const gatewayRecords = egressd.gateway.lines.filter((l) => l.includes('"decision":"allow"')).length;
  process.stdout.write(formatReport({ ...FLAGS, paths: results, processes, gatewayRecords }));
  return 0;
}

process.exitCode = await withTeardown(run, (message) => process.stderr.write(`${message}\n`));
