/**
 * The DNS proxy side by side with dnsmasq on loopback, in one run:
 *
 *   direct   client -> origin                     (dnsmasq answering *.bench.test itself: the floor)
 *   dnsmasq  client -> dnsmasq (cache)   -> origin
 *   egressd  client -> egressd DNS proxy -> origin (allowlist: *.bench.test; judged on every query)
 *   ceiling  client -> a Node process that echoes a fixed answer (the most a Node
 *            UDP server does here, or, without dnsperf, what the client can measure)
 *
 * Queries per second come from dnsperf when it is installed (Debian's
 * `dnsperf`), else from the Node client below.
 * Each peer runs in its own process, the client in another. For cache hits
 * (a set of names asked over and over) and forwarded misses (every name
 * new): queries per second with a fixed number in flight, and p50/p99
 * latency at a fixed arrival rate (measured from the scheduled send time).
 * Prints egressd's rate as a ratio of dnsmasq's and the p99 each adds over
 * direct. Two CPUs and a busy machine make the numbers move: compare within
 * one run.
 *
 *   node --import tsx bench/dns.bench.ts [--seconds 3] [--inflight 32] [--rate 1000] [--rounds 3]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import { parseArgs } from 'node:util';
import dnsPacket from 'dns-packet';

const SELF = fileURLToPath(import.meta.url);
const HOST = '127.0.0.1';
const HIT_NAMES = 100;
const QUERY_TIMEOUT_MS = 1000;

const { values } = parseArgs({
  options: {
    role: { type: 'string', default: 'main' },
    port: { type: 'string' },
    upstream: { type: 'string' },
    mode: { type: 'string' },
    names: { type: 'string' },
    seconds: { type: 'string', default: '3' },
    inflight: { type: 'string', default: '32' },
    rate: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
  },
});

interface LoadResult {
  qps: number;
  p50: number;
  p99: number;
  answered: number;
  errors: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** The client: one UDP socket, `max` keeps `inflight` queries outstanding, `rate` sends on a fixed schedule. */
async function load(port: number, mode: 'max' | 'rate', names: 'hit' | 'miss', seconds: number, amount: number): Promise<LoadResult> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, HOST, () => resolve()));
  const run = Math.random().toString(36).slice(2, 8);
  const hits = Array.from({ length: HIT_NAMES }, (_, i) => dnsPacket.encode({ id: 0, type: 'query', flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: `h${i}.bench.test`, type: 'A' }] }));
  let counter = 0;
  const next = (): Buffer => {
    counter++;
    if (names === 'hit') return Buffer.from(hits[counter % HIT_NAMES]!);
    return dnsPacket.encode({ id: 0, type: 'query', flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: `m${counter}-${run}.bench.test`, type: 'A' }] });
  };
  const outstanding = new Map<number, number>();
  const latencies: number[] = [];
  let errors = 0;
  let nextId = 0;
  let measuring = true;
  const send = (at: number): void => {
    do nextId = (nextId + 1) & 0xffff;
    while (outstanding.has(nextId));
    const packet = next();
    packet.writeUInt16BE(nextId, 0);
    outstanding.set(nextId, at);
    socket.send(packet, port, HOST);
  };
  socket.on('message', (msg) => {
    const sent = outstanding.get(msg.readUInt16BE(0));
    if (sent === undefined) return;
    outstanding.delete(msg.readUInt16BE(0));
    if ((msg[3]! & 0xf) !== 0) errors++;
    else latencies.push(performance.now() - sent);
    if (mode === 'max' && measuring) send(performance.now());
  });
  const sweep = setInterval(() => {
    const old = performance.now() - QUERY_TIMEOUT_MS;
    for (const [id, sent] of outstanding) {
      if (sent >= old) continue;
      outstanding.delete(id);
      errors++;
      if (mode === 'max' && measuring) send(performance.now());
    }
  }, 100);
  const start = performance.now();
  const end = start + seconds * 1000;
  if (mode === 'max') {
    for (let i = 0; i < amount; i++) send(performance.now());
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  } else {
    for (let i = 0; ; i++) {
      const due = start + (i * 1000) / amount;
      if (due >= end) break;
      // Never early (that would flatter the latency); when late, the delay counts.
      while (performance.now() < due) await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
      send(due);
    }
  }
  measuring = false;
  const elapsed = (performance.now() - start) / 1000;
  const answered = latencies.length;
  const deadline = performance.now() + QUERY_TIMEOUT_MS;
  while (outstanding.size > 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  clearInterval(sweep);
  socket.close();
  latencies.sort((a, b) => a - b);
  return { qps: answered / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), answered, errors: errors + outstanding.size };
}

/** The ceiling peer: answers every query with its own id and a fixed A record, doing nothing else. */
function echo(port: number): void {
  const socket = dgram.createSocket('udp4');
  const answer = dnsPacket.encode({ id: 0, type: 'response', flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE, questions: [{ name: 'h0.bench.test', type: 'A' }], answers: [{ name: 'h0.bench.test', type: 'A', ttl: 60, data: '192.0.2.1' }] });
  socket.on('message', (msg, rinfo) => {
    const reply = Buffer.from(answer);
    msg.copy(reply, 0, 0, 2);
    socket.send(reply, rinfo.port, rinfo.address);
  });
  socket.bind(port, HOST, () => process.stdout.write('listening\n'));
}

/** The egressd peer: the proxy as the agent runs it, without audit output. */
async function proxy(port: number, upstream: number): Promise<void> {
  const { compilePolicy, parseConfigText } = await import('../src/policy/index.ts');
  const { dnsProxyConfig, startDnsProxy } = await import('../src/dns/index.ts');
  const { createAuditSink } = await import('../src/core/audit.ts');
  const { createLogger } = await import('../src/core/logger.ts');
  const policy = compilePolicy(
    parseConfigText(
      'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: bench}\nspec:\n  hosts: ["*.bench.test"]\n  ports: [{number: 443, name: tls, protocol: TLS}]\n  resolution: NONE\n',
      'bench.yaml',
    ),
  );
  await startDnsProxy(dnsProxyConfig({ port, bind: [HOST], upstreams: [{ host: HOST, port: upstream }] }), {
    policy: () => policy,
    identity: { namespace: 'default', labels: {} },
    audit: createAuditSink({ component: 'agent', stdout: false }),
    logger: createLogger('dns', { level: 'warn' }),
  });
  process.stdout.write('listening\n');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

const children: ChildProcess[] = [];

function start(command: string, args: string[], ready: (text: string) => boolean): Promise<ChildProcess> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let seen = '';
  return new Promise((resolve, reject) => {
    const check = (d: Buffer): void => {
      seen += d.toString();
      if (ready(seen)) resolve(child);
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    child.on('exit', (code) => reject(new Error(`${command} exited (${code}) before it was ready: ${seen.trim()}`)));
  });
}

function dnsmasq(port: number, extra: string[]): Promise<ChildProcess> {
  return start('dnsmasq', ['--no-daemon', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--bind-interfaces', `--listen-address=${HOST}`, `--port=${port}`, ...extra], (s) => s.includes('started'));
}

/** dnsperf's queries per second (a C client, far from being the limit), when it is installed. */
async function dnsperf(port: number, names: 'hit' | 'miss', inflight: number): Promise<LoadResult> {
  const dir = await mkdtemp(join(tmpdir(), 'egressd-dns-bench-'));
  try {
    const run = Math.random().toString(36).slice(2, 8);
    // Enough fresh names that a miss run never wraps around to names it already asked.
    const lines = names === 'hit' ? Array.from({ length: HIT_NAMES }, (_, i) => `h${i}.bench.test A`) : Array.from({ length: 400_000 }, (_, i) => `m${i}-${run}.bench.test A`);
    await writeFile(join(dir, 'names'), `${lines.join('\n')}\n`);
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn('dnsperf', ['-s', HOST, '-p', String(port), '-d', join(dir, 'names'), '-l', values.seconds!, '-q', String(inflight), '-t', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`dnsperf exited ${code}: ${text}`))));
    });
    const qps = Number(/Queries per second:\s+([\d.]+)/.exec(out)?.[1]);
    const lost = Number(/Queries lost:\s+(\d+)/.exec(out)?.[1] ?? 0);
    return { qps, p50: NaN, p99: NaN, answered: NaN, errors: lost };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function runLoad(port: number, mode: 'max' | 'rate', names: 'hit' | 'miss', amount: number): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', SELF, '--role', 'load', '--port', String(port), '--mode', mode, '--names', names, '--seconds', values.seconds!, '--inflight', String(amount), '--rate', String(amount)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as LoadResult) : reject(new Error(`load client exited ${code}`))));
  });
}

function median(list: number[]): number {
  const sorted = [...list].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  const [origin, cache, egressd, ceiling] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  await dnsmasq(origin, ['--local-ttl=3600', '--address=/bench.test/192.0.2.1', '--cache-size=0']);
  await dnsmasq(cache, [`--server=${HOST}#${origin}`, '--cache-size=10000', '--dns-forward-max=1000']);
  await start(process.execPath, ['--import', 'tsx', SELF, '--role', 'proxy', '--port', String(egressd), '--upstream', String(origin)], (s) => s.includes('listening'));
  await start(process.execPath, ['--import', 'tsx', SELF, '--role', 'echo', '--port', String(ceiling)], (s) => s.includes('listening'));

  const plan: [label: string, port: number, names: 'hit' | 'miss'][] = [
    ['ceiling', ceiling, 'hit'],
    ['direct hit', origin, 'hit'],
    ['dnsmasq hit', cache, 'hit'],
    ['egressd hit', egressd, 'hit'],
    ['direct miss', origin, 'miss'],
    ['dnsmasq miss', cache, 'miss'],
    ['egressd miss', egressd, 'miss'],
  ];
  const inflight = Number(values.inflight);
  const rate = Number(values.rate);
  const useDnsperf = spawnSync('dnsperf', ['-h']).error === undefined;
  const rounds = Number(values.rounds);
  // Warm both caches with the hit names, and every process's code paths.
  for (const port of [cache, egressd]) await runLoad(port, 'rate', 'hit', 500);

  type Row = { qps: number[]; p50: number[]; p99: number[]; errors: number };
  const rows = new Map<string, Row>(plan.map(([label]) => [label, { qps: [], p50: [], p99: [], errors: 0 }]));
  // Rounds interleave the peers so that a noisy moment hits them all alike; medians are reported.
  for (let round = 0; round < rounds; round++) {
    for (const [label, port, names] of plan) {
      const max = useDnsperf ? await dnsperf(port, names, inflight) : await runLoad(port, 'max', names, inflight);
      const fixed = await runLoad(port, 'rate', names, rate);
      const row = rows.get(label)!;
      row.qps.push(max.qps);
      row.p50.push(fixed.p50);
      row.p99.push(fixed.p99);
      row.errors += max.errors + fixed.errors;
    }
  }

  const m = (label: string, key: 'qps' | 'p50' | 'p99'): number => median(rows.get(label)![key]);
  console.log(`DNS proxy benchmark: ${values.seconds} s per measurement, ${inflight} in flight for queries/s (${useDnsperf ? 'dnsperf' : 'Node client'}), ${rate}/s for latency (Node client), median of ${rounds} rounds`);
  console.log(`${'path'.padEnd(16)}${'queries/s'.padStart(12)}${'p50 ms'.padStart(10)}${'p99 ms'.padStart(10)}${'errors'.padStart(8)}`);
  for (const [label, row] of rows) {
    console.log(`${label.padEnd(16)}${Math.round(median(row.qps)).toString().padStart(12)}${median(row.p50).toFixed(3).padStart(10)}${median(row.p99).toFixed(3).padStart(10)}${String(row.errors).padStart(8)}`);
  }
  for (const names of ['hit', 'miss'] as const) {
    const ratio = m(`egressd ${names}`, 'qps') / m(`dnsmasq ${names}`, 'qps');
    const addedEgressd = m(`egressd ${names}`, 'p99') - m(`direct ${names}`, 'p99');
    const addedDnsmasq = m(`dnsmasq ${names}`, 'p99') - m(`direct ${names}`, 'p99');
    console.log(`${names === 'hit' ? 'cache hits' : 'forwarded misses'}: egressd/dnsmasq queries/s ${ratio.toFixed(2)}; p99 added over direct: egressd ${addedEgressd.toFixed(3)} ms, dnsmasq ${addedDnsmasq.toFixed(3)} ms`);
  }
  const ceilingQps = Math.round(m('ceiling', 'qps'));
  if (useDnsperf) console.log(`a Node process that only echoes answers: ${ceilingQps} queries/s (egressd cache hits are ${(m('egressd hit', 'qps') / ceilingQps).toFixed(2)} of it)`);
  else console.log(`client ceiling: ${ceilingQps} queries/s (a peer near it is limited by the client, not by itself; install dnsperf for a faster client)`);
  console.log('p99 differences below about 1 ms are within the noise of a shared machine; compare p50 as well');
}

function stopChildren(): void {
  for (const child of children) child.kill('SIGTERM');
}

switch (values.role) {
  case 'load':
    process.stdout.write(JSON.stringify(await load(Number(values.port), values.mode === 'rate' ? 'rate' : 'max', values.names === 'miss' ? 'miss' : 'hit', Number(values.seconds), Number(values.mode === 'rate' ? values.rate : values.inflight))));
    break;
  case 'echo':
    echo(Number(values.port));
    break;
  case 'proxy':
    await proxy(Number(values.port), Number(values.upstream));
    break;
  default:
    try {
      await main();
    } finally {
      stopChildren();
    }
}
