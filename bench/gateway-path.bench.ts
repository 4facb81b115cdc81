/**
 * The gateway path: what a tunnel costs. Each row opens a connection to a TCP
 * echo server on loopback, sends 64 bytes, reads them back and closes (32 in
 * flight), then moves 64 MiB through one connection. Side by side:
 * - direct TCP (the ceiling);
 * - egressd: `egressd gateway` in its own process, tunnels as HTTP/2 CONNECT
 *   streams over one pooled mTLS connection (GatewayPool), the gateway deciding,
 *   vetting the address and auditing each;
 * - egressd with a new pool per tunnel (an mTLS handshake each: what pooling saves);
 * - HAProxy 2.x as a TCP proxy terminating mTLS, one handshake per connection (a peer).
 * Run: node --import tsx bench/gateway-path.bench.ts   (HAProxy row skipped without haproxy)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { createSelfSignedRoot } from '../src/pki/ca-files.ts';
import { CertificateAuthority } from '../src/pki/certificate-authority.ts';
import { generateWorkloadKey, privateKeyPem } from '../src/pki/keys.ts';
import { GatewayPool } from '../src/tunnel/pool.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const IN_FLIGHT = 32;
const BULK = 64 * 1024 * 1024;
const GATEWAY_ID = 'spiffe://cluster.local/ns/egressd/sa/gateway';
const dir = mkdtempSync(join(tmpdir(), 'egressd-bench-gateway-'));
const children: ChildProcess[] = [];
const cleanup = (): void => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
};
process.on('exit', cleanup);

// Test-time PKI: the mesh CA signs the gateway, the agent and HAProxy's certificate.
const root = await createSelfSignedRoot('cluster.local');
const ca = CertificateAuthority.fromPem(root);
const issue = (names: { uris?: string[]; dnsNames?: string[] }): { cert: string; key: string } => {
  const key = generateWorkloadKey();
  const issued = ca.issue({ publicKeyDer: createPublicKey(key).export({ format: 'der', type: 'spki' }), names, ttlSeconds: 3600 });
  return { cert: issued.chain.slice(0, -1).join(''), key: privateKeyPem(key) };
};
const file = (name: string, text: string): string => {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
};
const gatewayCreds = issue({ uris: [GATEWAY_ID], dnsNames: ['localhost'] });
const agent = issue({ uris: ['spiffe://cluster.local/ns/default/sa/bench'] });
const caFile = file('ca.pem', root.certificatePem);
const agentContext = tls.createSecureContext({ cert: agent.cert, key: agent.key, ca: root.certificatePem });

const echo = net.createServer((socket) => socket.pipe(socket).on('error', () => {}));
await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
const echoPort = (echo.address() as net.AddressInfo).port;

async function startChild(argv: string[], ready: RegExp): Promise<RegExpExecArray> {
  const child = spawn(argv[0]!, argv.slice(1), { cwd: new URL('..', import.meta.url).pathname, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      if (err.length > 100_000) return;
      err += d.toString();
      const m = ready.exec(err);
      if (m) {
        err = 'x'.repeat(100_001);
        resolve(m);
      }
    });
    child.on('exit', (code) => reject(new Error(`${argv[0]} exited ${code}: ${err}`)));
  });
}

mkdirSync(join(dir, 'config'));
file(
  'config/echo.yaml',
  `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: echo, namespace: bench }
spec:
  hosts: [echo.bench.test]
  resolution: STATIC
  ports: [{ number: 7, name: tcp, protocol: TCP }]
  endpoints: [{ address: 127.0.0.1, ports: { tcp: ${echoPort} } }]
`,
);
const gatewayReady = await startChild(
  [process.execPath, 'bin/egressd.js', 'gateway', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--cert', file('gw.pem', gatewayCreds.cert), '--key', file('gw-key.pem', gatewayCreds.key),
    '--trust-bundle', caFile, '--config-dir', join(dir, 'config'), '--audit-log', join(dir, 'audit.log'), '--log-level', 'info'],
  /"listen":"([^"]+)"/,
);
const gatewayAddress = gatewayReady[1]!;
// Audit records go to the file and to stdout (ignored): the gateway pays for them as in production.

const request = { host: 'echo.bench.test', port: 7, protocol: 'tcp' as const };
const newPool = (): GatewayPool => new GatewayPool({ addresses: [gatewayAddress], secureContext: () => agentContext, gatewayIdentities: [GATEWAY_ID], pingIntervalMs: 0 });
const shared = newPool();

type Dial = () => Promise<{ stream: Duplex; done: () => void }>;

const dialDirect: Dial = () =>
  new Promise((resolve, reject) => {
    const socket = net.connect(echoPort, '127.0.0.1', () => resolve({ stream: socket, done: () => socket.destroy() })).once('error', reject);
  });

async function viaPool(pool: GatewayPool, after: () => void = () => {}): Promise<{ stream: Duplex; done: () => void }> {
  const result = await pool.open(request);
  if (!result.ok) throw new Error(`tunnel refused: ${result.status} ${result.reason}`);
  return { stream: result.stream, done: () => (result.stream.end(), after()) };
}
const dialShared: Dial = () => viaPool(shared);
const dialFresh: Dial = async () => {
  const pool = newPool();
  return viaPool(pool, () => void pool.close(0));
};

let haproxyPort: number | undefined;
if (spawnSync('haproxy', ['-v']).status === 0) {
  haproxyPort = await new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
  const haCreds = issue({ dnsNames: ['localhost'] });
  const cfg = file(
    'haproxy.cfg',
    `global\n  maxconn 4096\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n` +
      `frontend fe\n  bind 127.0.0.1:${haproxyPort} ssl crt ${file('haproxy.pem', haCreds.cert + haCreds.key)} ca-file ${caFile} verify required\n  default_backend be\n` +
      `backend be\n  server echo 127.0.0.1:${echoPort}\n`,
  );
  const child = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`haproxy exited ${code}: ${stderr}`)));
    const attempt = (): void => {
      net.connect(haproxyPort!, '127.0.0.1').once('connect', function (this: net.Socket) {
        this.destroy();
        resolve();
      }).once('error', () => setTimeout(attempt, 50));
    };
    attempt();
  });
}
const dialHaproxy: Dial = () =>
  new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: haproxyPort!, servername: 'localhost', secureContext: agentContext }, () =>
      resolve({ stream: socket, done: () => socket.end() }),
    );
    socket.once('error', reject);
  });

const PAYLOAD = Buffer.alloc(64, 7);

/** open, 64 bytes there and back, close; `IN_FLIGHT` at a time for SECONDS. */
async function connectionsPerSecond(dial: Dial): Promise<number> {
  const once = async (): Promise<void> => {
    const { stream, done } = await dial();
    await new Promise<void>((resolve, reject) => {
      let got = 0;
      stream.on('data', (chunk: Buffer) => {
        got += chunk.length;
        if (got >= PAYLOAD.length) resolve();
      });
      stream.once('error', reject);
      stream.write(PAYLOAD);
    });
    done();
  };
  for (let i = 0; i < 200; i++) await once();
  let n = 0;
  const start = performance.now();
  const end = start + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < end) {
        await once();
        n++;
      }
    }),
  );
  return n / ((performance.now() - start) / 1000);
}

/** MiB/s echoed through one connection (sent and read back). */
async function throughput(dial: Dial): Promise<number> {
  const { stream, done } = await dial();
  const chunk = Buffer.alloc(64 * 1024, 1);
  const start = performance.now();
  await new Promise<void>((resolve, reject) => {
    let got = 0;
    stream.on('data', (c: Buffer) => {
      got += c.length;
      if (got >= BULK) resolve();
    });
    stream.once('error', reject);
    let sent = 0;
    const pump = (): void => {
      while (sent < BULK) {
        sent += chunk.length;
        if (!stream.write(chunk)) {
          stream.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
  const seconds = (performance.now() - start) / 1000;
  done();
  return BULK / 1024 / 1024 / seconds;
}

const rows: [string, Dial][] = [
  ['direct TCP (ceiling)', dialDirect],
  ['egressd gateway, pooled mTLS HTTP/2', dialShared],
  ['egressd gateway, mTLS handshake each', dialFresh],
  ...(haproxyPort === undefined ? [] : ([['HAProxy TCP, mTLS handshake each', dialHaproxy]] as [string, Dial][])),
];
const results: { name: string; rate: number; mib: number }[] = [];
for (const [name, dial] of rows) results.push({ name, rate: await connectionsPerSecond(dial), mib: await throughput(dial) });
const ceiling = results[0]!;
console.log(`Connections per second (open, 64 B echo, close; ${IN_FLIGHT} in flight, ${SECONDS}s) and MiB/s through one connection (${process.version})`);
for (const r of results) {
  console.log(
    `  ${r.name.padEnd(40)} ${r.rate.toFixed(0).padStart(7)}/s ${((r.rate / ceiling.rate) * 100).toFixed(1).padStart(6)}%   ${r.mib.toFixed(0).padStart(6)} MiB/s ${((r.mib / ceiling.mib) * 100).toFixed(1).padStart(6)}%`,
  );
}
const pooled = results[1]!;
const fresh = results[2]!;
console.log(`  pooled vs handshake per tunnel: ${(pooled.rate / fresh.rate).toFixed(1)}x connections/s`);
const haproxy = results[3];
if (haproxy) console.log(`  egressd pooled vs HAProxy (handshake each): ${(pooled.rate / haproxy.rate).toFixed(2)}x connections/s, ${(pooled.mib / haproxy.mib).toFixed(2)}x MiB/s`);
await shared.close(0);
echo.close();
cleanup();
process.exit(0);
