import test from 'ava';
import { decodeObjectIdentifier, objectIdentifier, readElement, sequence, time, tlv, unsignedInteger } from '../../../src/pki/der.ts';

test('INTEGER from unsigned bytes is minimal and positive', (t) => {
  t.deepEqual(unsignedInteger(Buffer.from([0x00, 0x00, 0x7f])), Buffer.from([0x02, 0x01, 0x7f]));
  t.deepEqual(unsignedInteger(Buffer.from([0x80])), Buffer.from([0x02, 0x02, 0x00, 0x80]));
  t.deepEqual(unsignedInteger(Buffer.from([0x00])), Buffer.from([0x02, 0x01, 0x00]));
});

test('OBJECT IDENTIFIER round-trips, multi-byte arcs included', (t) => {
  for (const oid of ['2.5.29.17', '1.2.840.113549.1.9.14', '1.2.840.10045.4.3.2', '1.3.6.1.5.5.7.3.2']) {
    const el = readElement(objectIdentifier(oid));
    t.is(el.tag, 0x06);
    t.is(decodeObjectIdentifier(el.content), oid);
  }
  t.throws(() => decodeObjectIdentifier(Buffer.from([0x2a, 0x86])), { instanceOf: RangeError });
});

test('times: UTCTime before 2050, GeneralizedTime from 2050', (t) => {
  t.is(time(new Date('2049-12-31T23:59:59.900Z')).toString('latin1', 2), '491231235959Z');
  t.is(time(new Date('2049-12-31T23:59:59Z'))[0], 0x17);
  t.is(time(new Date('2050-01-01T00:00:00Z'))[0], 0x18);
  t.is(time(new Date('2050-01-01T00:00:00Z')).toString('latin1', 2), '20500101000000Z');
});

test('long lengths encode and read back', (t) => {
  const body = Buffer.alloc(300, 7);
  const el = readElement(sequence(tlv(0x04, body)));
  t.is(el.tag, 0x30);
  t.deepEqual(readElement(el.content).content, body);
});

const strictCases: Record<string, number[]> = {
  'empty input': [],
  'tag only': [0x30],
  'content past the end': [0x04, 0x05, 0x01],
  'indefinite length': [0x30, 0x80, 0x00, 0x00],
  'non-minimal long length': [0x04, 0x81, 0x01, 0x00],
  'leading zero in length': [0x04, 0x82, 0x00, 0x81, ...Array<number>(0x81).fill(0)],
  'multi-byte tag': [0x1f, 0x81, 0x01, 0x00],
};
for (const [name, bytes] of Object.entries(strictCases)) {
  test(`readElement refuses ${name}`, (t) => {
    t.throws(() => readElement(Buffer.from(bytes)), { instanceOf: RangeError });
  });
}
