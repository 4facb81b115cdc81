import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EgressdError, errorMessage } from '../core/errors.ts';
import { writeFileAtomic } from './atomic-write.ts';
import { CertificateAuthority } from './certificate-authority.ts';
import { privateKeyPem, webCryptoKeyPair, webCryptoSigningAlgorithm } from './keys.ts';
import { x509 } from './x509.ts';

/** Where the CA's material comes from: files an operator manages, or a root kept in a state directory. */
export interface CaSource {
  caCertFile?: string;
  caKeyFile?: string;
  caChainFile?: string;
  trustBundleFile?: string;
  stateDir?: string;
  trustDomain: string;
  backdateSeconds?: number;
}

export type CaOrigin = 'files' | 'state-dir-created' | 'state-dir-reused';

/** File names inside --state-dir. */
export const STATE_FILES = { cert: 'ca-cert.pem', key: 'ca-key.pem', trustBundle: 'trust-bundle.pem' } as const;

const ROOT_VALIDITY_DAYS = 3650;

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new EgressdError('EGRESSD_ERR_PKI', `${what} ${path}: ${errorMessage(err)}`, { cause: err });
  }
}

async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new EgressdError('EGRESSD_ERR_PKI', `${path}: ${errorMessage(err)}`, { cause: err });
  }
}

/** A new self-signed ECDSA P-256 root for the trust domain: the zero-configuration CA of demos and tests. */
export async function createSelfSignedRoot(trustDomain: string, now = new Date()): Promise<{ certificatePem: string; keyPem: string }> {
  const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  const keys = await webCryptoKeyPair(key);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(16).toString('hex').replace(/^[89a-f]/, '1'),
    name: [{ O: ['egressd'] }, { CN: [`egressd root CA ${trustDomain}`] }],
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + ROOT_VALIDITY_DAYS * 86_400_000),
    keys,
    signingAlgorithm: webCryptoSigningAlgorithm(key),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certificatePem: cert.toString('pem'), keyPem: privateKeyPem(key) };
}

/**
 * Loads the CA from --ca-cert/--ca-key (with --ca-chain, --trust-bundle), or from --state-dir,
 * creating a root there on first start and reusing it on every restart. With a state
 * directory, the trust bundle is also written there for distribution to workloads.
 */
export async function loadCertificateAuthority(source: CaSource): Promise<{ ca: CertificateAuthority; origin: CaOrigin }> {
  const options = source.backdateSeconds === undefined ? {} : { backdateSeconds: source.backdateSeconds };
  const trustBundlePem = source.trustBundleFile ? await readText(source.trustBundleFile, 'trust bundle') : undefined;
  let ca: CertificateAuthority;
  let origin: CaOrigin;
  if (source.caCertFile !== undefined || source.caKeyFile !== undefined) {
    if (!source.caCertFile || !source.caKeyFile) throw new EgressdError('EGRESSD_ERR_USAGE', '--ca-cert and --ca-key go together');
    const material = {
      certificatePem: await readText(source.caCertFile, 'CA certificate'),
      keyPem: await readText(source.caKeyFile, 'CA key'),
      ...(source.caChainFile ? { chainPem: await readText(source.caChainFile, 'CA chain') } : {}),
      ...(trustBundlePem ? { trustBundlePem } : {}),
    };
    ca = CertificateAuthority.fromPem(material, options);
    origin = 'files';
  } else {
    if (!source.stateDir) throw new EgressdError('EGRESSD_ERR_USAGE', 'give --ca-cert and --ca-key, or --state-dir to keep a self-signed root');
    await mkdir(source.stateDir, { recursive: true, mode: 0o700 });
    const certPath = join(source.stateDir, STATE_FILES.cert);
    const keyPath = join(source.stateDir, STATE_FILES.key);
    let certificatePem = await readIfPresent(certPath);
    let keyPem = await readIfPresent(keyPath);
    origin = 'state-dir-reused';
    if (certificatePem === undefined || keyPem === undefined) {
      ({ certificatePem, keyPem } = await createSelfSignedRoot(source.trustDomain));
      // Key first: a certificate without its key on disk would be unusable after a crash.
      await writeFileAtomic(keyPath, keyPem, 0o600);
      await writeFileAtomic(certPath, certificatePem);
      origin = 'state-dir-created';
    }
    ca = CertificateAuthority.fromPem({ certificatePem, keyPem, ...(trustBundlePem ? { trustBundlePem } : {}) }, options);
  }
  if (source.stateDir) {
    await mkdir(source.stateDir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(join(source.stateDir, STATE_FILES.trustBundle), ca.trustBundlePem());
  }
  return { ca, origin };
}
