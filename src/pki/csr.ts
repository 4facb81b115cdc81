import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { errorMessage } from '../core/errors.ts';
import { decodeObjectIdentifier, expectTag, readChildren, readElement, type DerElement } from './der.ts';
import { pemDecodeAll } from './pem.ts';
import { describeKey, webCryptoKeyPair, webCryptoSigningAlgorithm, type KeyDescription } from './keys.ts';
import { x509 } from './x509.ts';

/** What a CSR asks for. Requests are made by the agent and by tests; any name form can be asked, the CA decides. */
export interface CsrRequest {
  uris?: readonly string[];
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  emails?: readonly string[];
  /** Ask for basicConstraints CA:TRUE (the CA must refuse this; here so that it can be tested). */
  requestCa?: boolean;
}

export async function createCsr(key: KeyObject, request: CsrRequest): Promise<string> {
  const names: x509.JsonGeneralName[] = [
    ...(request.uris ?? []).map((value) => ({ type: 'url' as const, value })),
    ...(request.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(request.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
    ...(request.emails ?? []).map((value) => ({ type: 'email' as const, value })),
  ];
  const extensions: x509.Extension[] = [];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names));
  if (request.requestCa) extensions.push(new x509.BasicConstraintsExtension(true, undefined, true));
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys: await webCryptoKeyPair(key),
    signingAlgorithm: webCryptoSigningAlgorithm(key),
    extensions,
  });
  return csr.toString('pem');
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
