import { createPrivateKey, createPublicKey, generateKeyPairSync, webcrypto, type KeyObject } from 'node:crypto';
import { EgressdError, errorMessage } from '../core/errors.ts';
import { objectIdentifier, sequence, tlv } from './der.ts';

/** The key types a CA here signs for and signs with: ECDSA P-256/P-384, RSA of 2048 bits or more. */
export type KeyDescription = { kind: 'ec'; curve: 'P-256' | 'P-384' } | { kind: 'rsa'; bits: number };

const CURVES: Record<string, 'P-256' | 'P-384'> = { prime256v1: 'P-256', secp384r1: 'P-384' };
export const MIN_RSA_BITS = 2048;

/** The description of an acceptable key, or a sentence saying why the key is not acceptable. */
export function describeKey(key: KeyObject): KeyDescription | string {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') {
    const curve = CURVES[details.namedCurve ?? ''];
    return curve ? { kind: 'ec', curve } : `EC curve ${details.namedCurve ?? 'unknown'} is not accepted (P-256 or P-384)`;
  }
  if (key.asymmetricKeyType === 'rsa') {
    const bits = details.modulusLength ?? 0;
    return bits >= MIN_RSA_BITS ? { kind: 'rsa', bits } : `RSA key of ${bits} bits is too short (at least ${MIN_RSA_BITS})`;
  }
  return `${key.asymmetricKeyType ?? 'unknown'} keys are not accepted (ECDSA P-256/P-384 or RSA)`;
}

/** A fresh workload key: ECDSA P-256, generated natively (milliseconds, unlike pure-JS RSA). */
export function generateWorkloadKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
}

export function loadPrivateKey(pem: string, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new EgressdError('EGRESSD_ERR_PKI', `${what}: not a PEM private key: ${errorMessage(err)}`, { cause: err });
  }
  const desc = describeKey(key);
  if (typeof desc === 'string') throw new EgressdError('EGRESSD_ERR_PKI', `${what}: ${desc}`);
  return key;
}

export function privateKeyPem(key: KeyObject): string {
  return key.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** How a certificate is signed with a key: the DER AlgorithmIdentifier and node's digest name. */
export interface SignatureAlgorithm {
  identifier: Buffer;
  hash: 'sha256' | 'sha384';
}

export function signatureAlgorithmFor(key: KeyObject): SignatureAlgorithm {
  const desc = describeKey(key);
  if (typeof desc === 'string') throw new EgressdError('EGRESSD_ERR_PKI', `signing key: ${desc}`);
  if (desc.kind === 'ec' && desc.curve === 'P-384') return { identifier: sequence(objectIdentifier('1.2.840.10045.4.3.3')), hash: 'sha384' };
  if (desc.kind === 'ec') return { identifier: sequence(objectIdentifier('1.2.840.10045.4.3.2')), hash: 'sha256' };
  // RFC 4055: the RSA PKCS#1 v1.5 AlgorithmIdentifier carries an explicit NULL parameter.
  return { identifier: sequence(objectIdentifier('1.2.840.113549.1.1.11'), tlv(0x05)), hash: 'sha256' };
}

const WEBCRYPTO_CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

/**
 * The WebCrypto algorithm of a key. Building takes any EC or RSA key, weak ones too,
 * so that tests can ask the CA for what it must refuse; `describeKey` is the gate.
 */
function webCryptoAlgorithm(key: KeyObject): { name: string; namedCurve?: string; hash: string } {
  if (key.asymmetricKeyType === 'rsa') return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  const namedCurve = WEBCRYPTO_CURVES[key.asymmetricKeyDetails?.namedCurve ?? ''];
  if (key.asymmetricKeyType !== 'ec' || !namedCurve) throw new EgressdError('EGRESSD_ERR_PKI', `cannot sign with a ${key.asymmetricKeyType ?? 'unknown'} key`);
  return { name: 'ECDSA', namedCurve, hash: namedCurve === 'P-256' ? 'SHA-256' : 'SHA-384' };
}

/** The same key as a WebCrypto pair, for @peculiar/x509's generators (CSRs, the self-signed root). */
export async function webCryptoKeyPair(privateKey: KeyObject): Promise<CryptoKeyPair> {
  const algorithm = webCryptoAlgorithm(privateKey);
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const subtle = webcrypto.subtle;
  return {
    privateKey: (await subtle.importKey('pkcs8', pkcs8, algorithm, false, ['sign'])) as CryptoKey,
    publicKey: (await subtle.importKey('spki', spki, algorithm, true, ['verify'])) as CryptoKey,
  };
}

/** Signing parameters @peculiar/x509 needs next to a WebCrypto key. */
export function webCryptoSigningAlgorithm(key: KeyObject): { name: string; hash: string } {
  const { name, hash } = webCryptoAlgorithm(key);
  return { name, hash };
}
