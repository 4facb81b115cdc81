/**
 * CSR signings per second per core: the CA's in-process path and end-to-end through
 * gRPC/TLS, side by side with the bare node:crypto ECDSA P-256 signature (the ceiling)
 * and with @peculiar/x509's own parser and generator (the peer the hot path replaced).
 * Run: node --import tsx bench/pki-sign.bench.ts
 */
import * as grpc from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decideIssuance } from '../src/control-plane/csr-policy.ts';
import { loadTokenSigningKey, mintServiceAccountToken } from '../src/control-plane/service-account-token.ts';
import { caServiceDefinition, CREATE_CERTIFICATE_PATH } from '../src/pki/ca-api.ts';
import { createSelfSignedRoot } from '../src/pki/ca-files.ts';
import { CertificateAuthority } from '../src/pki/certificate-authority.ts';
import { createCsr, parseCsr } from '../src/pki/csr.ts';
import { generateWorkloadKey, webCryptoKeyPair } from '../src/pki/keys.ts';
import { x509 } from '../src/pki/x509.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ID = 'spiffe://example.org/ns/shop/sa/cart';
const policy = { trustDomain: 'example.org', defaultValiditySeconds: 86_400, maxValiditySeconds: 90 * 86_400 };
const caller = { namespace: 'shop', serviceAccount: 'cart' };

async function rate(fn: () => unknown | Promise<unknown>): Promise<number> {
  for (let i = 0; i < 1000; i++) await fn();
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < SECONDS * 1000) {
    await fn();
    n++;
  }
  return n / ((performance.now() - start) / 1000);
}

const root = await createSelfSignedRoot('example.org');
const ca = CertificateAuthority.fromPem(root);
const csrPem = await createCsr(generateWorkloadKey(), { uris: [ID] });

const bareKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
const tbsSized = Buffer.alloc(420, 1); // about the size of a leaf TBSCertificate
const bare = await rate(() => sign('sha256', tbsSized, bareKey));

const full = await rate(() => {
  const parsed = parseCsr(csrPem);
  if (!parsed.ok) throw new Error(parsed.message);
  const decision = decideIssuance(policy, caller, parsed.facts, 0);
  if (!decision.allow) throw new Error(decision.message);
  return ca.issue({ publicKeyDer: parsed.facts.publicKeyDer, names: { uris: [decision.spiffeId] }, ttlSeconds: decision.validitySeconds }).certificatePem;
});

// The peer: the same work done wholly with @peculiar/x509 (parse, verify, generate through WebCrypto).
const caKeys = await webCryptoKeyPair((await import('node:crypto')).createPrivateKey(root.keyPem));
const caCert = new x509.X509Certificate(root.certificatePem);
const peculiar = await rate(async () => {
  const req = new x509.Pkcs10CertificateRequest(csrPem);
  if (!(await req.verify())) throw new Error('bad CSR');
  const cert = await x509.X509CertificateGenerator.create({
    issuer: caCert.subjectName,
    publicKey: req.publicKey,
    signingKey: caKeys.privateKey,
    notAfter: new Date(Date.now() + 86_400_000),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: ID }], true),
      await x509.SubjectKeyIdentifierExtension.create(req.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return cert.toString('pem');
});

// End to end: the real control plane in its own process (its own core), one TLS channel, 32 calls in flight.
async function endToEnd(): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'egc-bench-'));
  const child = spawn(process.execPath, ['bin/egressd.js', 'control-plane', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--state-dir', dir, '--trust-domain', 'example.org'], {
    cwd: new URL('..', import.meta.url).pathname,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let err = '';
      child.stderr.on('data', (d: Buffer) => {
        if (err.length > 100_000) return; // issuance logs from here on: read and dropped
        err += d.toString();
        const m = /"grpcPort":(\d+)/.exec(err);
        if (m) {
          err = 'x'.repeat(100_001);
          resolve(Number(m[1]));
        }
      });
      child.on('exit', (code) => reject(new Error(`control plane exited ${code}: ${err}`)));
    });
    const { readFile } = await import('node:fs/promises');
    const bundle = await readFile(join(dir, 'trust-bundle.pem'));
    const token = mintServiceAccountToken(await loadTokenSigningKey({ stateDir: dir }), { ...caller, ttlSeconds: 3600 });
    const method = caServiceDefinition().CreateCertificate!;
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createSsl(bundle));
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${token}`);
    const call = (): Promise<void> =>
      new Promise((resolve, reject) =>
        client.makeUnaryRequest(CREATE_CERTIFICATE_PATH, method.requestSerialize, method.responseDeserialize, { csr: csrPem, validityDuration: '0' }, metadata, {}, (e) => (e ? reject(e) : resolve())),
      );
    for (let i = 0; i < 200; i++) await call();
    let n = 0;
    const start = performance.now();
    const end = start + SECONDS * 1000;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (performance.now() < end) {
          await call();
          n++;
        }
      }),
    );
    const perSecond = n / ((performance.now() - start) / 1000);
    client.close();
    return perSecond;
  } finally {
    child.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  }
}
const e2e = await endToEnd();

const rows: [string, number][] = [
  ['node:crypto ECDSA P-256 sign (ceiling)', bare],
  ['CA in-process: parse + policy + sign', full],
  ['@peculiar/x509 parse+verify+generate', peculiar],
  ['end to end: gRPC/TLS, token check', e2e],
];
console.log(`CSR signings per second, one core each (${SECONDS}s per row, ${process.version})`);
for (const [name, value] of rows) console.log(`  ${name.padEnd(42)} ${value.toFixed(0).padStart(8)}/s   ${((value / bare) * 100).toFixed(1).padStart(5)}% of ceiling`);
console.log(`  in-process vs @peculiar/x509 path: ${(full / peculiar).toFixed(1)}x; end to end vs in-process: ${((e2e / full) * 100).toFixed(0)}%`);
console.log(`  target >= 2000/s in-process: ${full >= 2000 ? 'met' : 'NOT met'}`);
