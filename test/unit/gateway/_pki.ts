/**
 * Certificate authorities made at test time with the project's own CA code:
 * the mesh CA that signs agents and gateways (SPIFFE IDs), a foreign CA
 * whose certificates must be refused, and an "internet" CA for the HTTPS
 * servers the gateway talks to.
 */
import { createPublicKey } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { createSelfSignedRoot } from '../../../src/pki/ca-files.ts';
import { CertificateAuthority } from '../../../src/pki/certificate-authority.ts';
import { generateWorkloadKey, privateKeyPem } from '../../../src/pki/keys.ts';
import type { LeafNames } from '../../../src/pki/leaf-certificate.ts';

export interface Leaf {
  /** The leaf then its issuer, PEM. */
  certPem: string;
  keyPem: string;
}

export class TestCa {
  private constructor(
    private readonly ca: CertificateAuthority,
    readonly rootPem: string,
  ) {}

  static async create(trustDomain = 'cluster.local'): Promise<TestCa> {
    const root = await createSelfSignedRoot(trustDomain);
    return new TestCa(CertificateAuthority.fromPem({ certificatePem: root.certificatePem, keyPem: root.keyPem }), root.certificatePem);
  }

  issue(names: LeafNames, ttlSeconds = 3600): Leaf {
    const key = generateWorkloadKey();
    const publicKeyDer = createPublicKey(key).export({ format: 'der', type: 'spki' });
    const issued = this.ca.issue({ publicKeyDer, names, ttlSeconds });
    return { certPem: issued.chain.slice(0, -1).join(''), keyPem: privateKeyPem(key) };
  }

  /** A workload certificate for spiffe://cluster.local/ns/<ns>/sa/<sa>. */
  workload(namespace: string, serviceAccount: string, trustDomain = 'cluster.local'): Leaf {
    return this.issue({ uris: [`spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`] });
  }

  /** What an agent hands the tunnel pool: its certificate and key, trusting this CA. */
  context(leaf: Leaf, trust: string = this.rootPem): tls.SecureContext {
    return tls.createSecureContext({ cert: leaf.certPem, key: leaf.keyPem, ca: trust });
  }
}

/** Writes cert.pem, key.pem and trust-bundle.pem into `dir`, as a mounted Secret would hold them. */
export function writeCredentials(dir: string, leaf: Leaf, trustPem: string): { certFile: string; keyFile: string; trustBundleFile: string } {
  mkdirSync(dir, { recursive: true });
  const files = { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem'), trustBundleFile: join(dir, 'trust-bundle.pem') };
  writeFileSync(files.certFile, leaf.certPem);
  writeFileSync(files.keyFile, leaf.keyPem);
  writeFileSync(files.trustBundleFile, trustPem);
  return files;
}
