import test from 'ava';
import dnsPacket, { type Answer } from 'dns-packet';
import { agedCopy, encodeOpt, readOpt, scanMessage, WireError } from '../../../src/dns/wire.ts';
import { labels, packet } from './_packets.ts';

/** One record of every type the proxy relays and ages (the unknown type stands for HTTPS and friends). */
const RECORDS: Answer[] = [
  { name: 'a.example.test', type: 'A', ttl: 300, class: 'IN', data: '192.0.2.1' },
  { name: 'a.example.test', type: 'AAAA', ttl: 301, class: 'IN', data: '2001:db8::1' },
  { name: 'www.example.test', type: 'CNAME', ttl: 302, class: 'IN', data: 'a.example.test' },
  { name: 'example.test', type: 'MX', ttl: 303, class: 'IN', data: { preference: 10, exchange: 'mail.example.test' } },
  { name: 'example.test', type: 'TXT', ttl: 304, class: 'IN', data: [Buffer.from('v=spf1 -all')] },
  { name: '_sip._tcp.example.test', type: 'SRV', ttl: 305, class: 'IN', data: { priority: 1, weight: 2, port: 5060, target: 'sip.example.test' } },
  { name: 'example.test', type: 'NS', ttl: 306, class: 'IN', data: 'ns1.example.test' },
  { name: '1.2.0.192.in-addr.arpa', type: 'PTR', ttl: 307, class: 'IN', data: 'a.example.test' },
  { name: 'example.test', type: 'CAA', ttl: 308, class: 'IN', data: { flags: 0, tag: 'issue', value: 'ca.example.test', issuerCritical: false } },
  {
    name: 'example.test',
    type: 'SOA',
    ttl: 309,
    class: 'IN',
    data: { mname: 'ns1.example.test', rname: 'hostmaster.example.test', serial: 1, refresh: 2, retry: 3, expire: 4, minimum: 60 },
  },
  { name: 'a.example.test', type: 'UNKNOWN_65' as 'NULL', ttl: 310, class: 'IN', data: Buffer.from('0001000001000302683200', 'hex') },
];

for (const record of RECORDS) {
  test(`a ${record.type} record round-trips, and aging rewrites its TTL and nothing else`, (t) => {
    const message = dnsPacket.encode({
      id: 1,
      type: 'response',
      questions: [{ name: record.name, type: record.type as 'A', class: 'IN' }],
      answers: [record],
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as Answer],
    });
    const layout = scanMessage(message);
    t.is(layout.ttlOffsets.length, 1, 'OPT carries no TTL');
    t.is(layout.end, message.length);
    t.is(message.readUInt32BE(layout.ttlOffsets[0]!), (record as { ttl: number }).ttl);
    const question = message.subarray(12, layout.questionEnd);
    const aged = agedCopy(message, layout, 0xbeef, question, 100);
    const decoded = dnsPacket.decode(aged);
    t.is(decoded.id, 0xbeef);
    t.deepEqual(decoded.answers?.[0], { ...dnsPacket.decode(message).answers![0]!, ttl: (record as { ttl: number }).ttl - 100 } as Answer);
    t.is(agedCopy(message, layout, 1, question, 10_000).readUInt32BE(layout.ttlOffsets[0]!), 0, 'a TTL never goes below zero');
  });
}

for (const label of labels('dnsmasq-')) {
  test(`the layout of the recorded ${label} matches dns-packet's reading of it`, (t) => {
    const message = packet(label);
    const layout = scanMessage(message);
    const decoded = dnsPacket.decode(message);
    const records = [...(decoded.answers ?? []), ...(decoded.authorities ?? []), ...(decoded.additionals ?? [])];
    t.is(layout.ttlOffsets.length, records.filter((r) => r.type !== 'OPT').length);
    t.is(layout.opt === -1, !records.some((r) => r.type === 'OPT'));
    t.is(layout.end, message.length);
    for (const offset of layout.ttlOffsets) t.true(offset < message.length);
    for (let n = 0; n < message.length; n++) {
      const prefix = message.subarray(0, n);
      t.throws(() => scanMessage(prefix), { instanceOf: WireError }, `prefix ${n}`);
    }
  });
}

test('a copy takes the client question bytes (its letter case) when the name has the same length', (t) => {
  const message = packet('dnsmasq-aaaa');
  const layout = scanMessage(message);
  const question = Buffer.from(message.subarray(12, layout.questionEnd));
  question.write('API', 1, 'latin1');
  const copy = agedCopy(message, layout, 9, question, 0);
  t.is(dnsPacket.decode(copy).questions?.[0]?.name, 'API.example.test');
  t.is(message.subarray(13, 16).toString(), 'api', 'the cached bytes are left alone');
});

test('OPT options are read and written as raw TLVs', (t) => {
  const opt = encodeOpt(4096, 0x8000, [{ code: 8, data: Buffer.from('00011800c00002', 'hex') }, { code: 65001, data: Buffer.alloc(0) }]);
  const message = Buffer.concat([Buffer.from('000100000000000000000001', 'hex'), opt]);
  const layout = scanMessage(message);
  t.is(layout.opt, 12);
  const read = readOpt(message, layout.opt);
  t.like(read, { udpSize: 4096, version: 0, flags: 0x8000 });
  t.deepEqual(read.options.map((o) => [o.code, o.data.toString('hex')]), [[8, '00011800c00002'], [65001, '']]);
  const bad = Buffer.from(message);
  bad.writeUInt16BE(30, 12 + 11 + 2); // the first option claims more bytes than the record has
  t.throws(() => readOpt(bad, 12), { instanceOf: WireError });
});

test('two OPT records are an error', (t) => {
  const opt = encodeOpt(1232, 0, []);
  t.throws(() => scanMessage(Buffer.concat([Buffer.from('000100000000000000000002', 'hex'), opt, opt])), { message: /more than one OPT/ });
});
