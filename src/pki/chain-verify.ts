import { X509Certificate, createPublicKey, type KeyObject } from 'node:crypto';
import { EgressdError, errorMessage } from '../core/errors.ts';
import { splitCertificates } from './pem.ts';

/** What a workload checks before it uses a certificate the CA returned. */
export interface ChainCheck {
  /** The chain as returned: leaf first, then intermediates, maybe the root. */
  chainPem: readonly string[];
  trustBundlePem: string;
  spiffeId: string;
  /** Our key: the leaf must certify exactly this key. */
  key: KeyObject;
  now?: Date;
}

export interface VerifiedChain {
  leafPem: string;
  /** Intermediates to present after the leaf (roots left out: peers hold them). */
  intermediatesPem: string[];
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

/** Peers' clocks differ; a certificate that becomes valid within this much is accepted. */
const NOT_BEFORE_TOLERANCE_MS = 5 * 60_000;

function refuse(message: string): never {
  throw new EgressdError('EGRESSD_ERR_CERT_CHAIN', message);
}

/**
 * Checks a returned chain: the leaf names our SPIFFE ID and nothing else, certifies our
 * key, is valid now, and links through CA certificates to a root of the trust bundle.
 * Throws EGRESSD_ERR_CERT_CHAIN saying which check failed.
 */
export function verifyIssuedChain(check: ChainCheck): VerifiedChain {
  const now = (check.now ?? new Date()).getTime();
  if (check.chainPem.length === 0) refuse('the CA returned an empty chain');
  let chain: X509Certificate[];
  let roots: X509Certificate[];
  try {
    chain = check.chainPem.map((pem) => new X509Certificate(pem));
    roots = splitCertificates(check.trustBundlePem).map((pem) => new X509Certificate(pem));
  } catch (err) {
    refuse(`a certificate could not be parsed: ${errorMessage(err)}`);
  }
  if (roots.length === 0) refuse('the trust bundle holds no certificate');
  const leaf = chain[0]!;
  const leafKey = leaf.publicKey.export({ format: 'der', type: 'spki' });
  if (!leafKey.equals(createPublicKey(check.key).export({ format: 'der', type: 'spki' }))) refuse('the leaf certifies another key than ours');
  // Node's rendering of the SAN extension: a single URI is `URI:<value>`; other names or more of them, or a
  // value it had to quote (RFC 5280 characters a SPIFFE ID cannot hold), make another string and are refused.
  if (leaf.subjectAltName !== `URI:${check.spiffeId}`) refuse(`the leaf names ${leaf.subjectAltName || 'nothing'}, expected only ${check.spiffeId}`);

  const rootPrints = new Set(roots.map((r) => r.fingerprint256));
  for (let i = 0, current = leaf; ; i++) {
    const notBefore = Date.parse(current.validFrom);
    const notAfter = Date.parse(current.validTo);
    if (now >= notAfter) refuse(`${i === 0 ? 'the leaf' : current.subject} expired at ${current.validTo}`);
    if (notBefore - NOT_BEFORE_TOLERANCE_MS > now) refuse(`${i === 0 ? 'the leaf' : current.subject} is not valid before ${current.validFrom}`);
    if (rootPrints.has(current.fingerprint256)) break;
    const issuer = [chain[i + 1], ...roots].find((c) => c !== undefined && current.checkIssued(c) && current.verify(c.publicKey));
    if (!issuer) refuse(`${i === 0 ? 'the leaf' : current.subject} was not issued by the next certificate of the chain nor by a root of the trust bundle`);
    if (!issuer.ca) refuse(`${issuer.subject} is not a CA certificate`);
    current = issuer;
    if (i > chain.length + 1) refuse('the chain does not end at a trusted root');
  }
  return {
    leafPem: check.chainPem[0]!,
    intermediatesPem: check.chainPem.slice(1).filter((_, i) => !rootPrints.has(chain[i + 1]!.fingerprint256)),
    serial: leaf.serialNumber.toLowerCase(),
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
  };
}
