/**
 * The hand-written CreateCertificate messages against the control plane's own codec
 * (protobufjs through @grpc/proto-loader, from proto/istio-ca.proto): each side reads what
 * the other writes, and the decoder meets every prefix and every byte of a response
 * with a result or a RangeError, nothing else.
 */
import test from 'ava';
import { caServiceDefinition, CREATE_CERTIFICATE_PATH as SERVED_PATH, type CreateCertificateRequest } from '../../../src/pki/ca-api.ts';
import { CREATE_CERTIFICATE_PATH, decodeCertificateResponse, encodeCertificateRequest } from '../../../src/pki/ca-messages.ts';

const method = caServiceDefinition().CreateCertificate!;
const CSR = '-----BEGIN CERTIFICATE REQUEST-----\nMIIBzDCCATUCAQAwADCBnzANBgkqhkiG9w0BAQEFAAOBjQAwgYkCgYEAwÿé\n-----END CERTIFICATE REQUEST-----\n';

test('the path is the one the control plane serves', (t) => {
  t.is(CREATE_CERTIFICATE_PATH, SERVED_PATH);
  t.is(method.path, CREATE_CERTIFICATE_PATH);
});

test('requests: the control plane reads csr and validity as sent, from 0 to past 2^32 seconds', (t) => {
  for (const validitySeconds of [0, 1, 127, 128, 3600, 86_400, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) {
    const read = method.requestDeserialize(encodeCertificateRequest({ csr: CSR, validitySeconds })) as CreateCertificateRequest;
    t.is(read.csr, CSR);
    t.is(read.validityDuration, String(validitySeconds), String(validitySeconds));
    t.is(read.metadata, null);
  }
});

test('requests: defaults are left out (proto3), fractions and negatives become whole seconds, bytes as protobufjs writes them', (t) => {
  t.is(encodeCertificateRequest({ csr: '', validitySeconds: 0 }).length, 0);
  t.is((method.requestDeserialize(encodeCertificateRequest({ csr: 'x', validitySeconds: 59.9 })) as CreateCertificateRequest).validityDuration, '59');
  t.is((method.requestDeserialize(encodeCertificateRequest({ csr: 'x', validitySeconds: -5 })) as CreateCertificateRequest).validityDuration, '0');
  // protobufjs writes a 0 it is given; a proto3 reader takes its absence for the same 0.
  t.is((method.requestDeserialize(encodeCertificateRequest({ csr: 'x', validitySeconds: 0 })) as CreateCertificateRequest).validityDuration, '0');
  t.deepEqual(encodeCertificateRequest({ csr: CSR, validitySeconds: 3600 }), method.requestSerialize({ csr: CSR, validityDuration: '3600' }));
});

test('responses: the chain the control plane writes, in order; empty and absent chains', (t) => {
  const chain = ['leaf', 'intermediate é', CSR, ''];
  t.deepEqual(decodeCertificateResponse(method.responseSerialize({ certChain: chain })), chain);
  t.deepEqual(decodeCertificateResponse(method.responseSerialize({ certChain: [] })), []);
  t.deepEqual(decodeCertificateResponse(Buffer.alloc(0)), []);
});

test('responses: fields of other numbers and wire types are skipped', (t) => {
  const known = method.responseSerialize({ certChain: ['a', 'b'] });
  const unknown = Buffer.from([
    0x10, 0x96, 0x01, // field 2, varint 150
    0x19, 1, 2, 3, 4, 5, 6, 7, 8, // field 3, fixed64
    0x25, 1, 2, 3, 4, // field 4, fixed32
    0x2a, 0x02, 0x68, 0x69, // field 5, bytes "hi"
    0x08, 0x01, // field 1 with the wrong wire type (varint): not a chain entry
  ]);
  t.deepEqual(decodeCertificateResponse(Buffer.concat([unknown, known, unknown])), ['a', 'b']);
});

test('responses: malformed input is a RangeError saying what is wrong', (t) => {
  const cases: Record<string, number[]> = {
    'a truncated varint': [0x80],
    'a length past the end': [0x0a, 0x05, 0x61],
    'a group (wire type 3)': [0x0b],
    'field number 0': [0x02, 0x00],
    'invalid UTF-8': [0x0a, 0x02, 0xc3, 0x28],
    'a varint of 11 bytes': [0x10, ...Array<number>(10).fill(0xff), 0x01],
  };
  for (const [name, bytes] of Object.entries(cases)) {
    const err = t.throws(() => decodeCertificateResponse(Buffer.from(bytes)), { instanceOf: RangeError }, name);
    t.regex(err!.message, /^protobuf: /, name);
  }
});

test('responses: every prefix and every single-byte change decodes or is a RangeError', (t) => {
  const message = method.responseSerialize({ certChain: ['-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n', 'second'] });
  const outcome = (bytes: Buffer): string => {
    try {
      return JSON.stringify(decodeCertificateResponse(bytes));
    } catch (err) {
      t.true(err instanceof RangeError, `${bytes.toString('hex')}: ${String(err)}`);
      return 'RangeError';
    }
  };
  for (let n = 0; n <= message.length; n++) outcome(message.subarray(0, n));
  for (let i = 0; i < message.length; i++) {
    for (const flip of [0x01, 0x80, 0xff]) {
      const changed = Buffer.from(message);
      changed[i]! ^= flip;
      outcome(changed);
    }
  }
  t.is(outcome(message), JSON.stringify(['-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n', 'second']));
});
