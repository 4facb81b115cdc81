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
 *   node --import tsx bench/chain.bench.ts [--seconds 10] [--rps 1000] [--conns 16] [--warmup 3] [--rounds 5]
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { canRunNetns, execInNetns, mustExecInNetns, spawnNodeInNetns, TSX_ARGS, withTeardown, type TeardownStack } from '../src/lab/index.ts';
import { startEgressdChain } from './lib/chain-egressd.ts';
import { startHaproxyChain } from './lib/chain-haproxy.ts';
import { CHAIN, createChainLab } from './lib/chain-lab.ts';
import { writeChainPki } from './lib/chain-pki.ts';
import { formatReport, mergeRounds, usage, type PathResult, type ProcessFigures, type RoundResult, type Usage } from './lib/chain-report.ts';

const PREFIX = 'egk-';
const APP_UID = 1000;
const AGENT_UID = 1337;

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rps: { type: 'string', default: '1000' },
    conns: { type: 'string', default: '16' },
    warmup: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '5' },
  },
});
const SECONDS = Number(values.seconds);
const RPS = Number(values.rps);
const CONNS = Number(values.conns);
/** Seconds of the same load on each path before measuring, not counted: Node's JIT warms up, pools fill. */
const WARMUP = Number(values.warmup);
/** Each path's SECONDS are run as this many rounds, the paths taking turns. */
const ROUNDS = Number(values.rounds);
const BAD_FLAGS = Object.entries({ seconds: SECONDS, rps: RPS, conns: CONNS, rounds: ROUNDS })
  .filter(([, n]) => !(n > 0) || !Number.isFinite(n))
  .map(([name]) => `--${name}`)
  .concat(WARMUP >= 0 ? [] : ['--warmup'])
  .concat(Number.isInteger(ROUNDS) && Number.isInteger(CONNS) ? [] : ['--rounds and --conns must be whole numbers']);

interface Path {
  name: 'direct' | 'egressd' | 'haproxy';
  ns: string;
  uid?: number;
  /** What load-client.ts dials, and its options. */
  host: string;
  port: number;
  extra: string[];
  /** The same request by curl, to fail loudly before measuring a path that does not work. */
  curl: string[];
  /** Processes whose CPU is charged to this path. */
  pids: Array<{ name: string; pid: number }>;
}

/** One GET by curl on the path: a 200 with 1,024 bytes, or the run stops with what curl saw. */
async function preflight(path: Path): Promise<void> {
  const result = await execInNetns(path.ns, 'curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', '--max-time', '10', ...path.curl], path.uid === undefined ? {} : { uid: path.uid });
  if (result.stdout.trim() !== '200 1024') throw new Error(`${path.name}: preflight GET answered "${result.stdout.trim()}" ${result.stderr.trim()}`);
}

/** load-client.ts `rate --latencies` on the path for `seconds`. */
async function load(path: Path, seconds: number): Promise<RoundResult> {
  const out = await mustExecInNetns(
    path.ns,
    process.execPath,
    [...TSX_ARGS, 'bench/lib/load-client.ts', 'rate', path.host, String(path.port), String(RPS), String(seconds), String(CONNS), '--latencies', ...path.extra],
    { ...(path.uid === undefined ? {} : { uid: path.uid }), timeoutMs: (seconds + 120) * 1000 },
  );
  return JSON.parse(out) as RoundResult;
}

/** One measured round of a path; the CPU its processes spent meanwhile is added to `cpu`. */
async function round(path: Path, seconds: number, cpu: Map<string, number>): Promise<RoundResult> {
  const before = new Map<string, Usage>();
  for (const p of path.pids) before.set(p.name, await usage(p.pid));
  const result = await load(path, seconds);
  for (const p of path.pids) cpu.set(p.name, (cpu.get(p.name) ?? 0) + (await usage(p.pid)).cpuSeconds - before.get(p.name)!.cpuSeconds);
  return result;
}

async function run(td: TeardownStack): Promise<number> {
  if (BAD_FLAGS.length > 0) {
    process.stderr.write(`chain bench: bad flags: ${BAD_FLAGS.join(', ')} (positive numbers; --warmup may be 0)\n`);
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
  process.stderr.write('chain up: server, haproxies, control plane, gateway, agent\n');

  const paths: Path[] = [
    {
      name: 'direct', ns: lab.gw, host: CHAIN.host, port: CHAIN.serverPort, extra: ['--https', '--ca', pki.internetCa],
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
  for (const path of paths) {
    await preflight(path);
    if (WARMUP > 0) await load(path, WARMUP);
  }
  // The paths take turns, so a burst of the machine's other work lands on each of them alike.
  const rounds = new Map<Path['name'], RoundResult[]>(paths.map((p) => [p.name, []]));
  const cpuSeconds = new Map<string, number>();
  for (let i = 0; i < ROUNDS; i++) {
    for (const path of paths) {
      const result = await round(path, SECONDS / ROUNDS, cpuSeconds);
      rounds.get(path.name)!.push(result);
      process.stderr.write(`round ${i + 1}/${ROUNDS} ${path.name}: p99 ${result.p99_ms.toFixed(2)} ms, ${result.errors} errors\n`);
    }
  }
  const results = Object.fromEntries(paths.map((p) => [p.name, mergeRounds(rounds.get(p.name)!)])) as Record<Path['name'], PathResult>;
  const processes: ProcessFigures[] = [];
  for (const path of paths) {
    for (const p of path.pids) {
      processes.push({ name: p.name, cpuPer1k: (cpuSeconds.get(p.name)! / results[path.name].requests) * 1000, peakRssMiB: (await usage(p.pid)).peakRssMiB });
    }
  }
  const gatewayRecords = egressd.gateway.lines.filter((l) => l.includes('"decision":"allow"')).length;
  process.stdout.write(formatReport({ rps: RPS, seconds: SECONDS, conns: CONNS, rounds: ROUNDS, paths: results, processes, gatewayRecords }));
  return 0;
}

process.exitCode = await withTeardown(run, (message) => process.stderr.write(`${message}\n`));
