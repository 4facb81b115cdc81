import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { EgressdError, errorMessage } from '../core/errors.ts';
import { BOOLEAN_TRUE, bitString, decodeObjectIdentifier, expectTag, objectIdentifier, octetString, readChildren, readElement, sequence, tlv, type DerElement } from './der.ts';
import { pemDecodeAll, pemEncode } from './pem.ts';
import { describeKey, type KeyDescription } from './keys.ts';

/** What a CSR asks for. Requests are made by the agent and by tests; any name form can be asked, the CA decides. */
export interface CsrRequest {
  uris?: readonly string[];
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  emails?: readonly string[];
  /** Ask for basicConstraints CA:TRUE (the CA must refuse this; here so that it can be tested). */
  requestCa?: boolean;
}

/**
 * A PKCS#10 request (RFC 2986) for `key`, built with the DER writer and signed with
 * node:crypto: the agent makes one at every renewal, and an ASN.1 library would cost it
 * several MiB of memory for that. Tests read every form back with @peculiar/x509.
 */
export async function createCsr(key: KeyObject, request: CsrRequest): Promise<string> {
  const names = [
    ...(request.uris ?? []).map((v) => tlv(0x86, Buffer.from(v, 'ascii'))),
    ...(request.dnsNames ?? []).map((v) => tlv(0x82, Buffer.from(v, 'ascii'))),
    ...(request.ipAddresses ?? []).map((v) => tlv(0x87, ipBytes(v))),
    ...(request.emails ?? []).map((v) => tlv(0x81, Buffer.from(v, 'ascii'))),
  ];
  const extensions: Buffer[] = [];
  if (names.length > 0) extensions.push(sequence(objectIdentifier(SUBJECT_ALT_NAME), octetString(sequence(...names))));
  if (request.requestCa) extensions.push(sequence(objectIdentifier(BASIC_CONSTRAINTS), BOOLEAN_TRUE, octetString(sequence(BOOLEAN_TRUE))));
  const attributes = extensions.length === 0 ? [] : [sequence(objectIdentifier(EXTENSION_REQUEST), tlv(0x31, sequence(...extensions)))];
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  const info = sequence(Buffer.from([0x02, 0x01, 0x00]), sequence(), spki, tlv(0xa0, ...attributes));
  const algorithm = csrSignatureAlgorithm(key);
  const signature = sign(algorithm.hash, info, key);
  return pemEncode('CERTIFICATE REQUEST', sequence(info, algorithm.identifier, bitString(signature)));
}

/** By key type alone, weak keys included: tests ask the CA for what it must refuse, and describeKey() is the CA's gate. */
function csrSignatureAlgorithm(key: KeyObject): { identifier: Buffer; hash: string } {
  if (key.asymmetricKeyType === 'rsa') return { identifier: sequence(objectIdentifier('1.2.840.113549.1.1.11'), tlv(0x05)), hash: 'sha256' };
  if (key.asymmetricKeyType !== 'ec') throw new EgressdError('EGRESSD_ERR_PKI', `cannot sign a CSR with a ${key.asymmetricKeyType ?? 'unknown'} key`);
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const hash = curve === 'secp384r1' ? 'sha384' : curve === 'secp521r1' ? 'sha512' : 'sha256';
  return { identifier: sequence(objectIdentifier(ECDSA_WITH[hash])), hash };
}

const ECDSA_WITH: Record<string, string> = { sha256: '1.2.840.10045.4.3.2', sha384: '1.2.840.10045.4.3.3', sha512: '1.2.840.10045.4.3.4' };

function ipBytes(address: string): Buffer {
  if (isIPv4(address)) return Buffer.from(address.split('.').map(Number));
  if (!isIPv6(address)) throw new EgressdError('EGRESSD_ERR_PKI', `"${address}" is not an IP address`);
  // An IPv4 tail (::ffff:192.0.2.1) is two groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address);
  const text = v4 ? address.slice(0, v4.index) + [[v4[1], v4[2]], [v4[3], v4[4]]].map(([a, b]) => ((Number(a) << 8) | Number(b)).toString(16)).join(':') : address;
  const [head, tail] = text.includes('::') ? text.split('::', 2) : [text, undefined];
  const groups = (part: string | undefined): number[] => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const front = groups(head);
  const back = groups(tail);
  const all = tail === undefined ? front : [...front, ...Array<number>(8 - front.length - back.length).fill(0), ...back];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** The facts of a parsed CSR; the CA's policy decides what is acceptable. */
export interface CsrFacts {
  /** DER SubjectPublicKeyInfo, copied verbatim into the certificate. */
  publicKeyDer: Buffer;
  /** The key type, or why it is not accepted. */
  key: KeyDescription | string;
  /** Whether the CSR's signature verifies with its own key (proof of possession). */
  selfSignatureValid: boolean;
  uris: string[];
  dnsNames: string[];
  ipAddresses: string[];
  emails: string[];
  /** Names of other kinds (other names, directory names, registered IDs...), by GeneralName tag. */
  otherNames: string[];
  requestsCa: boolean;
}

export type CsrParseResult = { ok: true; facts: CsrFacts } | { ok: false; message: string };

const SIGNATURE_HASHES: Record<string, string> = {
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
};
const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const SUBJECT_ALT_NAME = '2.5.29.17';
const BASIC_CONSTRAINTS = '2.5.29.19';
const SEQ = 0x30;

/**
 * Parses a PEM CSR (PKCS#10) with the strict DER reader. This is the signing hot path:
 * @peculiar/x509's parser costs ~0.4 ms per CSR, more than signing itself; the tests
 * check that both parsers agree on every CSR they build and on every prefix of them.
 * Never throws: bad input is a result, so that the server answers it and carries on.
 */
export function parseCsr(pem: string): CsrParseResult {
  if (typeof pem !== 'string') return { ok: false, message: 'not a PEM certificate request' };
  let der: Buffer;
  try {
    const blocks = pemDecodeAll(pem, 'CERTIFICATE REQUEST');
    if (blocks.length !== 1) return { ok: false, message: `expected one PEM certificate request, found ${blocks.length}` };
    der = blocks[0]!;
  } catch (err) {
    return { ok: false, message: errorMessage(err) };
  }
  try {
    return { ok: true, facts: readCsr(der) };
  } catch (err) {
    return { ok: false, message: `certificate request could not be parsed: ${errorMessage(err)}` };
  }
}

function readCsr(der: Buffer): CsrFacts {
  const outer = expectTag(readElement(der), SEQ, 'CertificationRequest');
  if (outer.end !== der.length) throw new RangeError('DER: trailing bytes after the request');
  const [infoEl, sigAlgEl, sigEl, ...extra] = readChildren(outer.content);
  const info = expectTag(infoEl, SEQ, 'CertificationRequestInfo');
  const signatureAlgorithm = expectTag(sigAlgEl, SEQ, 'signatureAlgorithm');
  const signature = expectTag(sigEl, 0x03, 'signature BIT STRING');
  if (extra.length > 0) throw new RangeError('DER: extra fields in CertificationRequest');
  const [version, subject, spki, attributes, ...rest] = readChildren(info.content);
  if (expectTag(version, 0x02, 'version').content.length !== 1 || version!.content[0] !== 0) throw new RangeError('version must be 0 (v1)');
  expectTag(subject, SEQ, 'subject Name');
  expectTag(spki, SEQ, 'subjectPKInfo');
  if (rest.length > 0) throw new RangeError('DER: extra fields in CertificationRequestInfo');
  const spkiStart = subject!.end;
  const publicKeyDer = Buffer.from(info.content.subarray(spkiStart, spki!.end));
  const publicKey = createPublicKey({ key: publicKeyDer, format: 'der', type: 'spki' });
  const facts: CsrFacts = {
    publicKeyDer,
    key: describeKey(publicKey),
    selfSignatureValid: false,
    uris: [],
    dnsNames: [],
    ipAddresses: [],
    emails: [],
    otherNames: [],
    requestsCa: false,
  };
  if (attributes) readAttributes(expectTag(attributes, 0xa0, 'attributes'), facts);
  const hash = SIGNATURE_HASHES[decodeObjectIdentifier(expectTag(readChildren(signatureAlgorithm.content)[0], 0x06, 'algorithm').content)];
  if (hash !== undefined && signature.content[0] === 0) {
    const signed = outer.content.subarray(0, info.end);
    try {
      facts.selfSignatureValid = verify(hash, signed, publicKey, signature.content.subarray(1));
    } catch {
      facts.selfSignatureValid = false;
    }
  }
  return facts;
}

function readAttributes(attributes: DerElement, facts: CsrFacts): void {
  for (const attribute of readChildren(attributes.content)) {
    const [type, values] = readChildren(expectTag(attribute, SEQ, 'Attribute').content);
    if (decodeObjectIdentifier(expectTag(type, 0x06, 'attribute type').content) !== EXTENSION_REQUEST) continue;
    for (const extensions of readChildren(expectTag(values, 0x31, 'attribute values').content)) {
      for (const ext of readChildren(expectTag(extensions, SEQ, 'Extensions').content)) readExtension(ext, facts);
    }
  }
}

function readExtension(ext: DerElement, facts: CsrFacts): void {
  const parts = readChildren(expectTag(ext, SEQ, 'Extension').content);
  const oid = decodeObjectIdentifier(expectTag(parts[0], 0x06, 'extnID').content);
  const value = expectTag(parts[parts.length - 1], 0x04, 'extnValue').content;
  const inner = readElement(value);
  if (inner.end !== value.length) throw new RangeError('DER: trailing bytes in an extension value');
  if (oid === BASIC_CONSTRAINTS) {
    const first = readChildren(expectTag(inner, SEQ, 'BasicConstraints').content)[0];
    if (first?.tag === 0x01 && first.content[0] !== 0) facts.requestsCa = true;
  } else if (oid === SUBJECT_ALT_NAME) {
    for (const name of readChildren(expectTag(inner, SEQ, 'GeneralNames').content)) {
      const text = name.content.toString('latin1');
      if (name.tag === 0x86) facts.uris.push(text);
      else if (name.tag === 0x82) facts.dnsNames.push(text);
      else if (name.tag === 0x81) facts.emails.push(text);
      else if (name.tag === 0x87) facts.ipAddresses.push(ipText(name.content));
      else facts.otherNames.push(`[${name.tag & 0x1f}]`);
    }
  }
}

function ipText(bytes: Buffer): string {
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.length === 16) return Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2).toString(16)).join(':');
  return `invalid(${bytes.toString('hex')})`;
}
