import { createHash, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import { EgressdError, errorMessage } from '../core/errors.ts';

/**
 * The gateway's own certificate, key and the trust bundle its callers must
 * chain to, read from files (a mounted Secret, files a CA agent rotates).
 * A change that does not load leaves the last good material in place.
 */

export interface CredentialFiles {
  certFile: string;
  keyFile: string;
  trustBundleFile: string;
}

export interface ServerCredentials {
  cert: string;
  key: string;
  ca: string;
  /** Hash of the three files' contents: a change is a new version. */
  version: string;
  notAfter: Date;
  subjectAltName: string | null;
  trustAnchors: number;
}

export async function loadCredentials(files: CredentialFiles): Promise<ServerCredentials> {
  const [cert, key, ca] = await Promise.all([
    read(files.certFile, 'gateway certificate (--cert)'),
    read(files.keyFile, 'gateway key (--key)'),
    read(files.trustBundleFile, 'trust bundle (--trust-bundle)'),
  ]);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw new EgressdError('EGRESSD_ERR_PKI', `gateway certificate ${files.certFile}: ${errorMessage(err)}`, { cause: err });
  }
  const anchors = ca.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;
  if (anchors === 0) throw new EgressdError('EGRESSD_ERR_PKI', `trust bundle ${files.trustBundleFile} holds no PEM certificate`);
  try {
    // Fails on a key that does not match the certificate, or unreadable PEM: better now than at the first handshake.
    tls.createSecureContext({ cert, key, ca });
  } catch (err) {
    throw new EgressdError('EGRESSD_ERR_PKI', `gateway credentials do not load: ${errorMessage(err)}`, { cause: err, context: { ...files } });
  }
  const version = createHash('sha256').update(cert).update('\0').update(key).update('\0').update(ca).digest('hex').slice(0, 16);
  return { cert, key, ca, version, notAfter: new Date(leaf.validTo), subjectAltName: leaf.subjectAltName ?? null, trustAnchors: anchors };
}

async function read(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new EgressdError('EGRESSD_ERR_PKI', `${what} ${path}: ${errorMessage(err)}`, { cause: err, context: { path } });
  }
}

/** What a TLS server needs to require client certificates from the trust bundle. */
export function serverTlsOptions(credentials: ServerCredentials): tls.SecureContextOptions {
  return { cert: credentials.cert, key: credentials.key, ca: credentials.ca };
}
