import { webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import { pemEncode } from './pem.ts';
import { x509 } from './x509.ts';

/**
 * A throwaway CA and one server certificate for DNS names and IPs, made in
 * memory: the stand-in "external API" of the demo and of end-to-end tests,
 * so that no key is ever committed. Not for workload identity (that is the
 * CertificateAuthority's job).
 */
export interface ServerPki {
  caPem: string;
  certPem: string;
  keyPem: string;
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export async function createServerPki(names: readonly string[], options: { caName?: string; validityHours?: number } = {}): Promise<ServerPki> {
  const subtle = webcrypto.subtle;
  const caKeys = (await subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + (options.validityHours ?? 24) * 3600_000);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${options.caName ?? 'egressd throwaway CA'}`,
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
  return {
    caPem: `${ca.toString('pem')}\n`,
    certPem: `${leaf.toString('pem')}\n`,
    keyPem: pemEncode('PRIVATE KEY', new Uint8Array(await subtle.exportKey('pkcs8', leafKeys.privateKey))),
  };
}
