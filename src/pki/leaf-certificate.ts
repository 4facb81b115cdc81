import { createHash, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { EgressdError } from '../core/errors.ts';
import { BOOLEAN_TRUE, bitString, explicit, objectIdentifier, octetString, readElement, sequence, time, tlv, unsignedInteger } from './der.ts';
import type { SignatureAlgorithm } from './keys.ts';

/**
 * Leaf certificates, assembled as DER from ready parts and signed with
 * node:crypto: this is the CA's hot path (see bench/pki-sign.bench.ts).
 * Everything about the issuer is computed once, per CA, in `IssuerParts`.
 */
export interface IssuerParts {
  /** DER Name of the issuing certificate's subject, verbatim, so that chains link byte for byte. */
  nameDer: Buffer;
  /** The issuing certificate's subject key identifier, for the leaf's authorityKeyIdentifier. */
  keyIdentifier: Buffer;
  key: KeyObject;
  algorithm: SignatureAlgorithm;
}

export interface LeafNames {
  uris?: readonly string[];
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
}

export interface LeafParams {
  /** DER SubjectPublicKeyInfo of the subject's key. */
  publicKeyDer: Buffer;
  names: LeafNames;
  notBefore: Date;
  notAfter: Date;
}

export interface LeafCertificate {
  der: Buffer;
  /** Lowercase hex of the serial number, as certificate parsers print it. */
  serial: string;
}

const OID = {
  basicConstraints: objectIdentifier('2.5.29.19'),
  keyUsage: objectIdentifier('2.5.29.15'),
  extKeyUsage: objectIdentifier('2.5.29.37'),
  subjectKeyIdentifier: objectIdentifier('2.5.29.14'),
  authorityKeyIdentifier: objectIdentifier('2.5.29.35'),
  subjectAltName: objectIdentifier('2.5.29.17'),
  serverAuth: objectIdentifier('1.3.6.1.5.5.7.3.1'),
  clientAuth: objectIdentifier('1.3.6.1.5.5.7.3.2'),
};

function extension(oid: Buffer, critical: boolean, value: Buffer): Buffer {
  return critical ? sequence(oid, BOOLEAN_TRUE, octetString(value)) : sequence(oid, octetString(value));
}

// The same for every leaf: not a CA; digitalSignature + keyEncipherment (bits 0 and 2); server and client auth.
const FIXED_EXTENSIONS = Buffer.concat([
  extension(OID.basicConstraints, true, sequence()),
  extension(OID.keyUsage, true, Buffer.from([0x03, 0x02, 0x05, 0xa0])),
  extension(OID.extKeyUsage, false, sequence(OID.serverAuth, OID.clientAuth)),
]);

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(publicKeyDer: Buffer): Buffer {
  const spki = readElement(publicKeyDer);
  const algorithm = readElement(spki.content);
  const bits = readElement(spki.content, algorithm.end);
  return createHash('sha1').update(bits.content.subarray(1)).digest();
}

function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!isIPv6(ip)) throw new EgressdError('EGRESSD_ERR_PKI', `"${ip}" is not an IP address`);
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = v4[1]!.split('.').map(Number);
    text = text.slice(0, -v4[1]!.length) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function subjectAltName(names: LeafNames): Buffer {
  const general = [
    ...(names.uris ?? []).map((u) => tlv(0x86, Buffer.from(u, 'ascii'))),
    ...(names.dnsNames ?? []).map((d) => tlv(0x82, Buffer.from(d, 'ascii'))),
    ...(names.ipAddresses ?? []).map((ip) => tlv(0x87, ipBytes(ip))),
  ];
  if (general.length === 0) throw new EgressdError('EGRESSD_ERR_PKI', 'a leaf certificate needs at least one subject alternative name');
  // The subject is empty, so RFC 5280 4.2.1.6 makes the SAN extension critical.
  return extension(OID.subjectAltName, true, sequence(...general));
}

/** A random positive 128-bit serial (RFC 5280 allows up to 20 octets; CA/B asks for at least 64 random bits). */
function serialNumber(): { der: Buffer; hex: string } {
  const bytes = randomBytes(16);
  if (bytes[0] === 0) bytes[0] = 1;
  return { der: unsignedInteger(bytes), hex: bytes.toString('hex') };
}

export function signLeaf(issuer: IssuerParts, params: LeafParams): LeafCertificate {
  const serial = serialNumber();
  const extensions = sequence(
    FIXED_EXTENSIONS,
    subjectAltName(params.names),
    extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(params.publicKeyDer))),
    extension(OID.authorityKeyIdentifier, false, sequence(tlv(0x80, issuer.keyIdentifier))),
  );
  const tbs = sequence(
    explicit(0, Buffer.from([0x02, 0x01, 0x02])),
    serial.der,
    issuer.algorithm.identifier,
    issuer.nameDer,
    sequence(time(params.notBefore), time(params.notAfter)),
    sequence(),
    params.publicKeyDer,
    explicit(3, extensions),
  );
  const signature = sign(issuer.algorithm.hash, tbs, issuer.key);
  return { der: sequence(tbs, issuer.algorithm.identifier, bitString(signature)), serial: serial.hex };
}
