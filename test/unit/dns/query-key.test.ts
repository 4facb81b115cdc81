import test from 'ava';
import dnsPacket, { type Answer } from 'dns-packet';
import { clientUdpLimit, parseQuery, type Query } from '../../../src/dns/codec.ts';
import { answerKey, keyOfQuery, readQueryKey, VARIANT } from '../../../src/dns/query-key.ts';
import { FLAG } from '../../../src/dns/wire.ts';
import { labels, packet } from './_packets.ts';

const DNSSEC_OK = 0x8000;

function encode(name: string, options: { flags?: number; edns?: { flags?: number; options?: { code: number; data: Buffer }[] }; id?: number } = {}): Buffer {
  return dnsPacket.encode({
    id: options.id ?? 0x1234,
    type: 'query',
    flags: options.flags ?? dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: 'A' }],
    additionals: options.edns === undefined ? [] : [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: options.edns.flags ?? 0, options: options.edns.options ?? [] } as Answer],
  });
}

const cookie = { code: 10, data: Buffer.from('0123456789abcdef', 'hex') };
const padding = { code: 12, data: Buffer.alloc(20) };

/** Queries the wire path takes: recorded from dig and Node, and encoded ones with what changes a key. */
const PLAIN: [string, Buffer][] = [
  ...[...labels('dig-'), ...labels('node-')].map((label): [string, Buffer] => [label, packet(label)]),
  ['0x20 letter case', encode('wWw.ExAmPlE.TeSt')],
  ['EDNS', encode('www.example.test', { edns: {} })],
  ['EDNS with DO', encode('www.example.test', { edns: { flags: DNSSEC_OK } })],
  ['EDNS with a cookie and padding', encode('www.example.test', { edns: { options: [cookie, padding] } })],
  ['CD', encode('www.example.test', { flags: dnsPacket.RECURSION_DESIRED | FLAG.CD })],
  ['no RD', encode('www.example.test', { flags: 0 })],
  ['digits, hyphens, underscores', encode('_dmarc.a-1.example.test')],
  ['a 63-byte label', encode(`${'a'.repeat(63)}.test`)],
];

function parsed(bytes: Buffer): Query {
  const result = parseQuery(bytes);
  if (result.kind !== 'query') throw new Error(`not a query: ${result.kind} ${result.why}`);
  return result.query;
}

for (const [what, bytes] of PLAIN) {
  test(`${what}: read from the wire as the full parser reads it, under the key the forwarder uses`, (t) => {
    const wire = readQueryKey(bytes);
    const query = parsed(bytes);
    if (wire === undefined) return t.fail('left to the full parser');
    t.is(wire.id, query.id);
    t.is(wire.name, query.name);
    t.is(wire.key, keyOfQuery(query));
    t.is(wire.questionEnd, 12 + query.questionBytes.length);
    t.is(wire.type, query.questionBytes.readUInt16BE(query.questionBytes.length - 4));
    t.is(wire.udpLimit, clientUdpLimit(query));
  });
}

test('letter case does not change the key; RD, CD, EDNS and DO do; hop-by-hop options do not', (t) => {
  const key = (bytes: Buffer): string => readQueryKey(bytes)!.key;
  t.is(key(encode('wWw.ExAmPlE.TeSt')), key(encode('www.example.test')));
  t.is(readQueryKey(encode('wWw.ExAmPlE.TeSt'))!.name, 'www.example.test');
  const variants = [
    encode('www.example.test'),
    encode('www.example.test', { flags: 0 }),
    encode('www.example.test', { flags: dnsPacket.RECURSION_DESIRED | FLAG.CD }),
    encode('www.example.test', { edns: {} }),
    encode('www.example.test', { edns: { flags: DNSSEC_OK } }),
  ];
  t.is(new Set(variants.map(key)).size, variants.length);
  t.is(key(encode('www.example.test', { edns: { options: [cookie, padding] } })), key(encode('www.example.test', { edns: {} })));
});

test('no two questions share a key', (t) => {
  const keys = [
    answerKey('a.test', 1, 1, 0),
    answerKey('a.test', 28, 1, 0),
    answerKey('a.test', 1, 3, 0),
    answerKey('a.test', 1, 1, VARIANT.RD),
    answerKey('a.test', 1, 1, VARIANT.EDNS),
    answerKey('a.test', 1, 1, VARIANT.EDNS, ':8=0001'),
    answerKey('a.test\u0000\u0001\u0001\u0000', 1, 1, 0),
  ];
  t.is(new Set(keys).size, keys.length);
});

const header = (counts: string): string => `12340100${counts}`;
const QUESTION = '03777777076578616d706c65047465737400' + '00010001';
/** Queries the wire path leaves to the full parser, which answers them, refuses them or drops them. */
const LEFT: [string, Buffer][] = [
  ['a response', Buffer.from(`12348100${'0001000000000000'}${QUESTION}`, 'hex')],
  ['opcode STATUS', Buffer.from(`12341100${'0001000000000000'}${QUESTION}`, 'hex')],
  ['two questions', Buffer.from(`${header('0002000000000000')}${QUESTION}${QUESTION}`, 'hex')],
  ['an answer record', Buffer.from(`${header('0001000100000000')}${QUESTION}c00c000100010000003c0004c0000201`, 'hex')],
  ['a compression pointer in the name', Buffer.from(`${header('0001000000000000')}03777777c00c00010001`, 'hex')],
  ['the root name', Buffer.from(`${header('0001000000000000')}0000020001`, 'hex')],
  ['a space in a label', encode('a b.example.test')],
  ['a byte beyond ASCII', encode('caf\u00e9.example.test')],
  ['a dot inside a label', Buffer.from(`${header('0001000000000000')}03612e62047465737400${'00010001'}`, 'hex')],
  ['a name longer than 254 bytes', encode(Array.from({ length: 5 }, () => 'a'.repeat(63)).join('.'))],
  ['EDNS version 1', Buffer.from(`${header('0001000000000001')}${QUESTION}0000290200000100000000`, 'hex')],
  ['an OPT record with a name', Buffer.from(`${header('0001000000000001')}${QUESTION}c00c290200000000000000`, 'hex')],
  ['an EDNS option forwarded upstream (client subnet)', encode('www.example.test', { edns: { options: [{ code: 8, data: Buffer.from('00011800c00002', 'hex') }] } })],
  ['a keepalive option', encode('www.example.test', { edns: { options: [{ code: 11, data: Buffer.alloc(0) }] } })],
  ['an option running past the OPT record', Buffer.from(`${header('0001000000000001')}${QUESTION}00002904d000000000000a000a0008`, 'hex')],
  ['two additional records', Buffer.from(`${header('0001000000000002')}${QUESTION}0000290200000000000000${'0000290200000000000000'}`, 'hex')],
  ['a byte after the question', Buffer.from(`${header('0001000000000000')}${QUESTION}00`, 'hex')],
  ['a byte after the OPT record', Buffer.from(`${header('0001000000000001')}${QUESTION}000029020000000000000000`, 'hex')],
];

for (const [what, bytes] of LEFT) {
  test(`left to the full parser: ${what}`, (t) => {
    t.is(readQueryKey(bytes), undefined);
  });
}

test('every proper prefix of a plain query is left to the full parser, without throwing', (t) => {
  for (const [what, bytes] of PLAIN) {
    for (let n = 0; n < bytes.length; n++) t.is(readQueryKey(bytes.subarray(0, n)), undefined, `${what}, ${n} bytes`);
  }
});

/** A small deterministic generator (mulberry32): the same mutations on every run. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

test('whatever the wire path takes of mutated queries, the full parser takes as the same query', (t) => {
  const next = random(6);
  let taken = 0;
  for (const [, original] of PLAIN) {
    for (let i = 0; i < 2000; i++) {
      const bytes = Buffer.from(original);
      for (let flips = 1 + Math.floor(next() * 3); flips > 0; flips--) bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
      const wire = readQueryKey(bytes);
      if (wire === undefined) continue;
      taken++;
      const full = parseQuery(bytes);
      if (full.kind !== 'query') return t.fail(`${bytes.toString('hex')}: the wire path took what the full parser calls ${full.kind} (${full.why})`);
      const { name, questionBytes } = full.query;
      if (wire.name !== name || wire.key !== keyOfQuery(full.query) || wire.udpLimit !== clientUdpLimit(full.query) || wire.questionEnd !== 12 + questionBytes.length) return t.fail(`${bytes.toString('hex')}: read differently`);
    }
  }
  t.true(taken > 1000, `mutations the wire path took: ${taken}`);
});
