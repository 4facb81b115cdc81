import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import type { TeardownHost } from './netns.ts';

/**
 * A throwaway CA and one server certificate, made at test time so no key is
 * ever committed. Files land in a temp dir removed at teardown; `caFile` is
 * what `curl --cacert` or Node's `ca` option wants.
 */
x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export interface TestPki {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  caPem: string;
  certPem: string;
  keyPem: string;
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').trimEnd();
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** CA plus a server certificate for `names` (DNS names and IP addresses both go into the SAN). */
export async function createTestPki(t: TeardownHost, names: readonly string[]): Promise<TestPki> {
  const subtle = webcrypto.subtle;
  const caKeys = (await subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + 24 * 3600_000);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=egressd e2e test CA',
    keys: caKeys,
    signingAlgorithm: ALG,
    notBefore,
    notAfter,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const leafKeys = (await subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const leaf = await x509.X509CertificateGenerator.create({
    subject: `CN=${names[0] ?? 'server'}`,
    issuer: ca.subject,
    publicKey: leafKeys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: ALG,
    notBefore,
    notAfter,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((n) => ({ type: isIP(n) ? ('ip' as const) : ('dns' as const), value: n }))),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const dir = await mkdtemp(join(tmpdir(), 'egressd-e2e-pki-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // Readable by every UID: clients and servers may run as non-root test users; the key is throwaway.
  await chmod(dir, 0o755);
  const files = { caFile: join(dir, 'ca.pem'), certFile: join(dir, 'server.pem'), keyFile: join(dir, 'server-key.pem') };
  const caPem = ca.toString('pem') + '\n';
  const certPem = leaf.toString('pem') + '\n';
  const keyPem = pem('PRIVATE KEY', await subtle.exportKey('pkcs8', leafKeys.privateKey));
  await writeFile(files.caFile, caPem);
  await writeFile(files.certFile, certPem);
  await writeFile(files.keyFile, keyPem);
  return { dir, ...files, caPem, certPem, keyPem };
}
