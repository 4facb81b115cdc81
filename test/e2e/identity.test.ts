import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as tls from 'node:tls';
import { runTokenCommand } from '../../src/cli/token-command.ts';
import { startControlPlane, type ControlPlane } from '../../src/control-plane/control-plane.ts';
import { loadTokenSigningKey, mintServiceAccountToken } from '../../src/control-plane/service-account-token.ts';
import { createLogger } from '../../src/core/logger.ts';
import { requestCertificate } from '../../src/pki/ca-client.ts';
import { CertificateManager, OUTPUT_FILES, type CertificateStatus } from '../../src/pki/certificate-manager.ts';
import { createCsr } from '../../src/pki/csr.ts';
import { generateWorkloadKey, privateKeyPem } from '../../src/pki/keys.ts';
import { x509 } from '../../src/pki/x509.ts';
import { JsonLines } from '../helpers/json-lines.ts';

const TD = 'example.org';
const ME = { trustDomain: TD, namespace: 'shop', serviceAccount: 'cart' };
const MY_ID = `spiffe://${TD}/ns/shop/sa/cart`;

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'egc-identity-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function controlPlane(stateDir: string, port = 0, stream?: Writable): Promise<ControlPlane> {
  return startControlPlane({
    listen: { host: '127.0.0.1', port },
    admin: { host: '127.0.0.1', port: 0 },
    ca: { stateDir, trustDomain: TD },
    policy: { trustDomain: TD, defaultValiditySeconds: 3600, maxValiditySeconds: 7200 },
    tokens: { kind: 'local' },
    serverNames: ['localhost'],
    logger: createLogger('control-plane', { level: 'info', ...(stream ? { destination: stream } : { level: 'silent' }) }),
  });
}

async function writeToken(stateDir: string, file: string, who = ME): Promise<void> {
  const key = await loadTokenSigningKey({ stateDir });
  await writeFile(file, mintServiceAccountToken(key, { namespace: who.namespace, serviceAccount: who.serviceAccount, ttlSeconds: 3600 }));
}

function manager(port: number, dir: string, validitySeconds: number): CertificateManager {
  return new CertificateManager({
    identity: ME,
    ca: { address: `127.0.0.1:${port}` },
    tokenFile: join(dir, 'token'),
    trustBundleFile: join(dir, 'state', 'trust-bundle.pem'),
    validitySeconds,
    backoff: { initialMs: 100, maxMs: 400 },
    outputDir: join(dir, 'out'),
  });
}

function nextEvent<K extends 'rotated' | 'renewal-failed' | 'expired'>(m: CertificateManager, event: K, timeoutMs = 20_000): Promise<unknown> {
  return Promise.race([
    once(m, event).then((args) => args[0] as unknown),
    new Promise((_, reject) => setTimeout(() => reject(new Error(`no "${event}" within ${timeoutMs} ms`)), timeoutMs).unref()),
  ]);
}

/** A TLS server that demands a client certificate from the bundle and answers each line with the client's serial. */
async function mtlsServer(t: ExecutionContext, cp: ControlPlane): Promise<number> {
  const key = generateWorkloadKey();
  const issued = cp.ca.issue({ publicKeyDer: createPublicKey(key).export({ format: 'der', type: 'spki' }), names: { ipAddresses: ['127.0.0.1'] }, ttlSeconds: 3600 });
  const server = tls.createServer({ key: privateKeyPem(key), cert: issued.chain.slice(0, -1).join(''), ca: cp.ca.trustBundlePem(), requestCert: true, rejectUnauthorized: true }, (socket) => {
    const serial = socket.getPeerX509Certificate()?.serialNumber.toLowerCase() ?? 'none';
    socket.on('data', () => socket.write(`${serial}\n`));
    socket.on('error', () => socket.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as { port: number }).port;
}

async function connect(port: number, m: CertificateManager): Promise<tls.TLSSocket> {
  const socket = tls.connect({ host: '127.0.0.1', port, secureContext: m.secureContext()! });
  await once(socket, 'secureConnect');
  return socket;
}

async function ask(socket: tls.TLSSocket): Promise<string> {
  socket.write('who am i\n');
  const [data] = (await once(socket, 'data')) as [Buffer];
  return data.toString().trim();
}

test('the manager renews repeatedly; an open mTLS connection stays up, new connections present the new certificate', async (t) => {
  const dir = await tempDir(t);
  const cp = await controlPlane(join(dir, 'state'));
  t.teardown(() => cp.stop());
  await writeToken(join(dir, 'state'), join(dir, 'token'));
  const m = manager(cp.grpcPort, dir, 4);
  t.teardown(() => m.stop());
  m.start();
  const first = await m.whenReady(20_000);
  const port = await mtlsServer(t, cp);

  const longLived = await connect(port, m);
  t.teardown(() => longLived.destroy());
  t.is(await ask(longLived), first.serial!);

  const serials = [first.serial];
  for (let i = 0; i < 3; i++) {
    const status = (await nextEvent(m, 'rotated')) as CertificateStatus;
    serials.push(status.serial);
    const fresh = await connect(port, m);
    t.is(await ask(fresh), status.serial!, 'a new connection presents the new certificate');
    fresh.destroy();
    t.is(await ask(longLived), first.serial!, 'the long-lived connection carries on with its certificate');
  }
  t.is(new Set(serials).size, 4);
  t.true(m.status().renewals >= 4);

  // What was written to disk is the current certificate, for our key, naming only us.
  const chainPem = await readFile(join(dir, 'out', OUTPUT_FILES.chain), 'utf8');
  const leaf = new x509.X509Certificate(chainPem);
  const keyPem = await readFile(join(dir, 'out', OUTPUT_FILES.key), 'utf8');
  t.deepEqual(Buffer.from(leaf.publicKey.rawData), createPublicKey(keyPem).export({ format: 'der', type: 'spki' }));
  t.deepEqual([...leaf.getExtension(x509.SubjectAlternativeNameExtension)!.names.items].map((n) => n.value), [MY_ID]);
  const root = new x509.X509Certificate(await readFile(join(dir, 'out', OUTPUT_FILES.bundle), 'utf8'));
  t.true(await leaf.verify({ publicKey: root.publicKey, signatureOnly: true }));
});

test('CA stopped during a renewal: the manager backs off, keeps its valid certificate, renews once the CA is back', async (t) => {
  const dir = await tempDir(t);
  const state = join(dir, 'state');
  let cp = await controlPlane(state);
  const port = cp.grpcPort;
  t.teardown(() => cp.stop());
  await writeToken(state, join(dir, 'token'));
  const m = manager(port, dir, 8);
  t.teardown(() => m.stop());
  m.start();
  const before = await m.whenReady(20_000);
  const contextBefore = m.secureContext();
  await cp.stop();

  const failure = (await nextEvent(m, 'renewal-failed')) as { error: Error; attempt: number; retryInMs: number };
  t.regex(failure.error.message, /UNAVAILABLE/);
  t.true(failure.retryInMs <= 400);
  t.true(m.isReady(), 'still ready on the old certificate');
  t.is(m.secureContext(), contextBefore);
  t.is(m.status().serial, before.serial);
  t.true(m.status().notAfter!.getTime() > Date.now());
  await nextEvent(m, 'renewal-failed'); // and it keeps trying

  cp = await controlPlane(state, port);
  t.is(cp.caOrigin, 'state-dir-reused');
  const after = (await nextEvent(m, 'rotated')) as CertificateStatus;
  t.not(after.serial, before.serial);
  t.true(after.failures >= 2);
  t.is(after.consecutiveFailures, 0);
  t.true(m.isReady());
});

test('refusals: each with its status and reason, logged and counted, and the CA keeps serving', async (t) => {
  const dir = await tempDir(t);
  const state = join(dir, 'state');
  const logs = new JsonLines();
  const cp = await controlPlane(state, 0, logs);
  t.teardown(() => cp.stop());
  const signer = await loadTokenSigningKey({ stateDir: state });
  const endpoint = { address: `127.0.0.1:${cp.grpcPort}`, trustBundlePem: cp.ca.trustBundlePem() };
  const good = mintServiceAccountToken(signer, { namespace: 'shop', serviceAccount: 'cart', ttlSeconds: 600 });
  const key = generateWorkloadKey();
  const csr = (r: Parameters<typeof createCsr>[1]): Promise<string> => createCsr(key, r);
  const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const payload = { iss: 'egressd-control-plane', sub: 'system:serviceaccount:shop:cart', aud: ['egressd'], exp: Math.floor(Date.now() / 1000) + 600, 'kubernetes.io': { namespace: 'shop', serviceaccount: { name: 'cart' } } };

  const cases: Record<string, { csr: string; token: string; status: string; reason: string }> = {
    "a CSR for another service account's SPIFFE ID": { csr: await csr({ uris: [`spiffe://${TD}/ns/shop/sa/admin`] }), token: good, status: 'PERMISSION_DENIED', reason: 'csr_identity_mismatch' },
    'a CSR with an extra DNS SAN': { csr: await csr({ uris: [MY_ID], dnsNames: ['bank.example'] }), token: good, status: 'PERMISSION_DENIED', reason: 'csr_extra_names' },
    'a CSR asking to be a CA': { csr: await csr({ uris: [MY_ID], requestCa: true }), token: good, status: 'PERMISSION_DENIED', reason: 'csr_requests_ca' },
    'a garbage CSR': { csr: '-----BEGIN CERTIFICATE REQUEST-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE REQUEST-----\n', token: good, status: 'INVALID_ARGUMENT', reason: 'csr_malformed' },
    'an expired token': { csr: await csr({ uris: [MY_ID] }), token: mintServiceAccountToken(signer, { namespace: 'shop', serviceAccount: 'cart', ttlSeconds: 60, now: new Date(Date.now() - 3600_000) }), status: 'UNAUTHENTICATED', reason: 'token_expired' },
    'a token for another audience': { csr: await csr({ uris: [MY_ID] }), token: mintServiceAccountToken(signer, { namespace: 'shop', serviceAccount: 'cart', ttlSeconds: 600, audiences: ['vault'] }), status: 'UNAUTHENTICATED', reason: 'token_wrong_audience' },
    'an unsigned token (alg none)': { csr: await csr({ uris: [MY_ID] }), token: `${b64({ alg: 'none' })}.${b64(payload)}.`, status: 'UNAUTHENTICATED', reason: 'token_unsigned' },
    'no token at all': { csr: await csr({ uris: [MY_ID] }), token: '', status: 'UNAUTHENTICATED', reason: 'token_missing' },
  };
  for (const [name, c] of Object.entries(cases)) {
    const err = await t.throwsAsync(requestCertificate(endpoint, { csrPem: c.csr, validitySeconds: 60, token: c.token }), undefined, name);
    t.is((err as { context?: { grpcStatus?: string } }).context?.grpcStatus, c.status, name);
    t.true(err!.message.includes(`${c.reason}:`), `${name}: ${err!.message}`);
    const logged = logs.items.find((r) => r.reason === c.reason);
    t.truthy(logged, `${name} is logged with its reason`);
    // The CA keeps serving: a good request right after each refusal succeeds.
    const chain = await requestCertificate(endpoint, { csrPem: await csr({ uris: [MY_ID] }), validitySeconds: 60, token: good });
    t.deepEqual([...new x509.X509Certificate(chain[0]!).getExtension(x509.SubjectAlternativeNameExtension)!.names.items].map((n) => n.value), [MY_ID]);
  }

  const metrics = await (await fetch(`http://127.0.0.1:${cp.adminPort}/stats/prometheus`)).text();
  const value = (name: string, reason?: string): number => {
    const line = metrics.split('\n').find((l) => l.startsWith(reason ? `${name}{reason="${reason}"}` : `${name} `));
    return Number(line?.split(' ').pop());
  };
  for (const c of Object.values(cases)) t.is(value('egressd_ca_requests_refused_total', c.reason), 1, c.reason);
  t.is(value('egressd_ca_certificates_issued_total'), Object.keys(cases).length);
  const issuance = logs.items.find((r) => r.msg === 'certificate issued')!;
  t.is(issuance.spiffeId, MY_ID);
  t.regex(String(issuance.serial), /^[0-9a-f]{32}$/);
  t.false(Number.isNaN(Date.parse(String(issuance.notAfter))));
  t.is((await fetch(`http://127.0.0.1:${cp.adminPort}/healthz/ready`)).status, 200);
});

test('requested validity is capped by the maximum', async (t) => {
  const dir = await tempDir(t);
  const cp = await controlPlane(join(dir, 'state'));
  t.teardown(() => cp.stop());
  const signer = await loadTokenSigningKey({ stateDir: join(dir, 'state') });
  const chain = await requestCertificate(
    { address: `127.0.0.1:${cp.grpcPort}`, trustBundlePem: cp.ca.trustBundlePem() },
    { csrPem: await createCsr(generateWorkloadKey(), { uris: [MY_ID] }), validitySeconds: 365 * 86_400, token: mintServiceAccountToken(signer, { namespace: 'shop', serviceAccount: 'cart', ttlSeconds: 60 }) },
  );
  const leaf = new x509.X509Certificate(chain[0]!);
  const lifetime = (leaf.notAfter.getTime() - leaf.notBefore.getTime()) / 1000;
  t.is(lifetime, 7200 + 60); // the cap, plus the backdated minute
  t.is(chain.length, 2);
});

test('spawned `egressd control-plane`: token from `egressctl token`, a certificate for the manager, ready and metrics on the admin port', async (t) => {
  const dir = await tempDir(t);
  const state = join(dir, 'state');
  const child = spawn(process.execPath, ['bin/egressd.js', 'control-plane', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--state-dir', state, '--trust-domain', TD], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  const serving = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`control plane did not start: ${stderr}`)), 30_000);
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      for (const line of stderr.split('\n')) {
        if (!line.startsWith('{')) continue;
        const record = JSON.parse(line) as Record<string, unknown>;
        if (record.msg === 'control plane serving') {
          clearTimeout(timer);
          resolve(record);
        }
      }
    });
    child.on('exit', (code) => reject(new Error(`control plane exited ${code}: ${stderr}`)));
  });
  const chunks: string[] = [];
  const out = new Writable({ write: (c: Buffer, _e, done) => (chunks.push(c.toString()), done()) });
  t.is(await runTokenCommand(['--namespace', 'shop', '--service-account', 'cart', '--ttl', '10m', '--state-dir', state], out), 0);
  await writeFile(join(dir, 'token'), chunks.join(''));

  const m = manager(Number(serving.grpcPort), dir, 600);
  t.teardown(() => m.stop());
  m.start();
  const status = await m.whenReady(20_000);
  t.is(status.spiffeId, MY_ID);
  t.is((await fetch(`http://127.0.0.1:${Number(serving.adminPort)}/healthz/ready`)).status, 200);
  const metrics = await (await fetch(`http://127.0.0.1:${Number(serving.adminPort)}/stats/prometheus`)).text();
  t.true(metrics.split('\n').includes('egressd_ca_certificates_issued_total 1'));

  child.kill('SIGTERM');
  const [code] = (await once(child, 'exit')) as [number | null];
  t.is(code, 0);
});
