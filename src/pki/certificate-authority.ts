import { X509Certificate, createPublicKey, type KeyObject } from 'node:crypto';
import { EgressdError, errorMessage } from '../core/errors.ts';
import { readElement } from './der.ts';
import { loadPrivateKey, signatureAlgorithmFor } from './keys.ts';
import { keyIdentifier, signLeaf, type IssuerParts, type LeafNames } from './leaf-certificate.ts';
import { pemEncode, splitCertificates } from './pem.ts';

/** PEM inputs of a CA: its signing certificate and key, intermediates above it, trusted roots. */
export interface CaMaterialPem {
  certificatePem: string;
  keyPem: string;
  /** Certificates above the signing certificate, nearest first; may end with the root. */
  chainPem?: string;
  /** Roots that workloads trust; several during a root rotation. Default: the root of the chain. */
  trustBundlePem?: string;
}

export interface IssueParams {
  publicKeyDer: Buffer;
  names: LeafNames;
  ttlSeconds: number;
  now?: Date;
}

export interface IssuedCertificate {
  certificatePem: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** Leaf first, then the intermediates, then the root: what CreateCertificate returns. */
  chain: string[];
}

/** Backdating notBefore absorbs clock skew between the CA and the peers that check the certificate. */
export const DEFAULT_BACKDATE_SECONDS = 60;

function parseCertificate(pem: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new EgressdError('EGRESSD_ERR_PKI', `${what}: not a certificate: ${errorMessage(err)}`, { cause: err });
  }
}

/** The DER subject Name of a certificate, verbatim (Certificate > TBSCertificate > 6th field, counting the version). */
function subjectNameDer(cert: X509Certificate): Buffer {
  const tbs = readElement(readElement(cert.raw).content);
  let offset = 0;
  const first = readElement(tbs.content, offset);
  offset = first.tag === 0xa0 ? first.end : offset; // explicit version
  for (let i = 0; i < 4; i++) offset = readElement(tbs.content, offset).end; // serial, signature, issuer, validity
  const subject = readElement(tbs.content, offset);
  return Buffer.from(tbs.content.subarray(offset, subject.end));
}

const isSelfSigned = (c: X509Certificate): boolean => c.checkIssued(c) && c.verify(c.publicKey);

export class CertificateAuthority {
  /** Signing certificate, intermediates, root (PEM), as appended to each issued leaf. */
  readonly chain: readonly string[];
  readonly trustBundle: readonly string[];
  readonly notAfter: Date;
  readonly notBefore: Date;
  readonly #issuer: IssuerParts;
  readonly #backdateMs: number;

  private constructor(chain: string[], trustBundle: string[], issuer: IssuerParts, signing: X509Certificate, backdateSeconds: number) {
    this.chain = Object.freeze(chain);
    this.trustBundle = Object.freeze(trustBundle);
    this.#issuer = issuer;
    this.notAfter = new Date(signing.validTo);
    this.notBefore = new Date(signing.validFrom);
    this.#backdateMs = backdateSeconds * 1000;
  }

  /** Checks the material fits together (key matches, CA flags, chain links, root trusted) before anything is signed. */
  static fromPem(material: CaMaterialPem, options: { backdateSeconds?: number } = {}): CertificateAuthority {
    const key: KeyObject = loadPrivateKey(material.keyPem, 'CA key');
    const signing = parseCertificate(material.certificatePem, 'CA certificate');
    if (!signing.ca) throw new EgressdError('EGRESSD_ERR_PKI', 'CA certificate: basicConstraints does not allow it to sign certificates (CA:FALSE)');
    if (!signing.checkPrivateKey(key)) throw new EgressdError('EGRESSD_ERR_PKI', 'CA key does not match the CA certificate');
    const above = splitCertificates(material.chainPem ?? '').map((pem, i) => parseCertificate(pem, `CA chain certificate ${i + 1}`));
    const path = [signing, ...above];
    for (let i = 0; i + 1 < path.length; i++) {
      if (!path[i]!.checkIssued(path[i + 1]!) || !path[i]!.verify(path[i + 1]!.publicKey)) {
        throw new EgressdError('EGRESSD_ERR_PKI', `CA chain: certificate ${i + 1} (${path[i + 1]!.subject}) did not issue ${path[i]!.subject}`);
      }
    }
    const bundle = splitCertificates(material.trustBundlePem ?? '').map((pem, i) => parseCertificate(pem, `trust bundle certificate ${i + 1}`));
    let top = path[path.length - 1]!;
    if (!isSelfSigned(top)) {
      const root = bundle.find((r) => top.checkIssued(r) && top.verify(r.publicKey));
      if (!root) throw new EgressdError('EGRESSD_ERR_PKI', `CA chain ends at ${top.subject}, which no root in the trust bundle issued`);
      path.push(root);
      top = root;
    }
    const roots = bundle.length > 0 ? bundle : [top];
    if (!roots.some((r) => r.fingerprint256 === top.fingerprint256)) {
      throw new EgressdError('EGRESSD_ERR_PKI', `the trust bundle does not hold the root of the CA chain (${top.subject})`);
    }
    const publicKeyDer = createPublicKey(key).export({ format: 'der', type: 'spki' });
    const issuer: IssuerParts = {
      nameDer: subjectNameDer(signing),
      keyIdentifier: keyIdentifier(publicKeyDer),
      key,
      algorithm: signatureAlgorithmFor(key),
    };
    return new CertificateAuthority(
      path.map((c) => pemEncode('CERTIFICATE', c.raw)),
      roots.map((c) => pemEncode('CERTIFICATE', c.raw)),
      issuer,
      signing,
      options.backdateSeconds ?? DEFAULT_BACKDATE_SECONDS,
    );
  }

  /** Signs a leaf for the given key and names. No policy here: the caller has decided the request is allowed. */
  issue(params: IssueParams): IssuedCertificate {
    // Certificates carry whole seconds; so do the dates reported here.
    const now = new Date(Math.floor((params.now ?? new Date()).getTime() / 1000) * 1000);
    const notBefore = new Date(Math.max(now.getTime() - this.#backdateMs, this.notBefore.getTime()));
    // Never outlive the CA: a leaf valid past its issuer's expiry would fail verification early anyway.
    const notAfter = new Date(Math.min(now.getTime() + params.ttlSeconds * 1000, this.notAfter.getTime()));
    const leaf = signLeaf(this.#issuer, { publicKeyDer: params.publicKeyDer, names: params.names, notBefore, notAfter });
    const certificatePem = pemEncode('CERTIFICATE', leaf.der);
    return { certificatePem, serial: leaf.serial, notBefore, notAfter, chain: [certificatePem, ...this.chain] };
  }

  trustBundlePem(): string {
    return this.trustBundle.join('');
  }
}
