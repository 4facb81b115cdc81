import test from 'ava';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createCsr, parseCsr, type CsrRequest } from '../../../src/pki/csr.ts';
import { generateWorkloadKey } from '../../../src/pki/keys.ts';
import { pemDecodeAll, pemEncode } from '../../../src/pki/pem.ts';
import { x509 } from '../../../src/pki/x509.ts';

const ID = 'spiffe://example.org/ns/shop/sa/cart';
const p384 = (): KeyObject => generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey;
const rsa = (bits: number): KeyObject => generateKeyPairSync('rsa', { modulusLength: bits }).privateKey;

const cases: Record<string, { key: () => KeyObject; request: CsrRequest }> = {
  'the agent CSR: one SPIFFE URI, P-256': { key: generateWorkloadKey, request: { uris: [ID] } },
  'P-384 key': { key: p384, request: { uris: [ID] } },
  'RSA 2048 key': { key: () => rsa(2048), request: { uris: [ID] } },
  'extra DNS and IP names': { key: generateWorkloadKey, request: { uris: [ID], dnsNames: ['evil.example'], ipAddresses: ['10.1.2.3', '2001:db8::1', '::ffff:192.0.2.1', 'fe80::1:2:3:4'] } },
  'an email name': { key: generateWorkloadKey, request: { uris: [ID], emails: ['a@example.org'] } },
  'a CA request': { key: generateWorkloadKey, request: { uris: [ID], requestCa: true } },
  'no names at all': { key: generateWorkloadKey, request: {} },
};

/** The same facts as read by @peculiar/x509, the reference parser. */
async function referenceFacts(pem: string): Promise<Record<string, unknown>> {
  const req = new x509.Pkcs10CertificateRequest(pem);
  const names = [...req.extensions]
    .filter((e): e is x509.SubjectAlternativeNameExtension => e instanceof x509.SubjectAlternativeNameExtension)
    .flatMap((e) => e.names.items);
  const of = (type: string): string[] => [...names.filter((n) => n.type === type).map((n) => n.value)];
  return {
    publicKeyDer: Buffer.from(req.publicKey.rawData),
    selfSignatureValid: await req.verify(),
    uris: of('url'),
    dnsNames: of('dns'),
    emails: of('email'),
    requestsCa: req.extensions.some((e) => e instanceof x509.BasicConstraintsExtension && e.ca),
  };
}

for (const [name, c] of Object.entries(cases)) {
  test(`parseCsr agrees with @peculiar/x509: ${name}`, async (t) => {
    const pem = await createCsr(c.key(), c.request);
    const parsed = parseCsr(pem);
    if (!parsed.ok) return t.fail(parsed.message);
    const { publicKeyDer, selfSignatureValid, uris, dnsNames, emails, requestsCa } = parsed.facts;
    t.deepEqual({ publicKeyDer, selfSignatureValid, uris, dnsNames, emails, requestsCa }, await referenceFacts(pem));
    // The URL parser writes every IPv6 form one way (compressed, IPv4 tail in hex).
    const canonical = (ip: string): string => (ip.includes(':') ? new URL(`http://[${ip}]/`).hostname : ip);
    t.deepEqual(parsed.facts.ipAddresses.map(canonical), (c.request.ipAddresses ?? []).map(canonical));
  });
}

test('parseCsr reports the key type, and why a weak key is not accepted', async (t) => {
  const facts = async (key: KeyObject): Promise<unknown> => {
    const r = parseCsr(await createCsr(key, { uris: [ID] }));
    return r.ok ? r.facts.key : r.message;
  };
  t.deepEqual(await facts(generateWorkloadKey()), { kind: 'ec', curve: 'P-256' });
  t.deepEqual(await facts(p384()), { kind: 'ec', curve: 'P-384' });
  t.regex(String(await facts(rsa(1024))), /1024 bits is too short/);
});

test('a CSR whose signature does not match its content is reported, not trusted', async (t) => {
  const der = pemDecodeAll(await createCsr(generateWorkloadKey(), { uris: [ID] }), 'CERTIFICATE REQUEST')[0]!;
  const at = der.indexOf(Buffer.from(ID));
  der[at + ID.length - 1] = 'x'.charCodeAt(0); // same length, other service account
  const parsed = parseCsr(pemEncode('CERTIFICATE REQUEST', der));
  t.true(parsed.ok);
  if (parsed.ok) {
    t.is(parsed.facts.selfSignatureValid, false);
    t.deepEqual(parsed.facts.uris, [ID.slice(0, -1) + 'x']);
  }
});

test('every strict prefix of a CSR is refused without throwing', async (t) => {
  const der = pemDecodeAll(await createCsr(generateWorkloadKey(), { uris: [ID], dnsNames: ['a.example'] }), 'CERTIFICATE REQUEST')[0]!;
  for (let n = 0; n < der.length; n++) {
    const r = parseCsr(pemEncode('CERTIFICATE REQUEST', der.subarray(0, n)));
    if (r.ok) return t.fail(`prefix of ${n} bytes accepted`);
  }
  t.pass();
});

const garbage: Record<string, unknown> = {
  'an empty string': '',
  'text without PEM': 'hello',
  'a certificate instead of a CSR': '-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n',
  'bad base64': '-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n',
  'random bytes': pemEncode('CERTIFICATE REQUEST', Buffer.from('30820101deadbeef', 'hex')),
  'two requests': pemEncode('CERTIFICATE REQUEST', Buffer.from([0x30, 0])).repeat(2),
  'a number': 42,
};
for (const [name, input] of Object.entries(garbage)) {
  test(`parseCsr refuses ${name}`, (t) => {
    const r = parseCsr(input as string);
    t.false(r.ok);
    if (!r.ok) t.true(r.message.length > 0);
  });
}

test('trailing bytes after the request are refused', async (t) => {
  const der = pemDecodeAll(await createCsr(generateWorkloadKey(), { uris: [ID] }), 'CERTIFICATE REQUEST')[0]!;
  const r = parseCsr(pemEncode('CERTIFICATE REQUEST', Buffer.concat([der, Buffer.from([0])])));
  t.false(r.ok);
});
