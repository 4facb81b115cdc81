import test from 'ava';
import dnsPacket from 'dns-packet';
import { clientUdpLimit, localAnswer, parseQuery, questionFor, truncated, upstreamQuery, type Query } from '../../../src/dns/codec.ts';
import { FLAG, RCODE } from '../../../src/dns/wire.ts';
import { labels, packet } from './_packets.ts';

const QUERIES = [...labels('dig-'), ...labels('node-')];

function query(label: string): Query {
  const parsed = parseQuery(packet(label));
  if (parsed.kind !== 'query') throw new Error(`${label}: ${parsed.kind} ${parsed.why}`);
  return parsed.query;
}

test('recorded queries parse: name lowered, type, class, EDNS, the question bytes as sent', (t) => {
  t.like(query('dig-a-edns-cookie'), { name: 'api.example.test', type: 'A', class: 'IN', edns: { udpSize: 1232, version: 0, dnssecOk: false, options: [] } });
  t.like(query('dig-aaaa-noedns'), { name: 'api.example.test', type: 'AAAA', edns: undefined });
  t.like(query('dig-txt-dnssec'), { name: 'big.example.test', type: 'TXT', edns: { dnssecOk: true } });
  t.like(query('dig-https'), { type: 'UNKNOWN_65' });
  const mixed = query('dig-mixed-case-mx');
  t.is(mixed.name, 'mail.example.test');
  t.is(mixed.questionBytes.toString('latin1').slice(1, 5), 'MaIl', 'the question is echoed as the client wrote it');
  t.like(query('node-resolver-a'), { name: 'node.example.test', type: 'A', edns: undefined });
});

for (const label of QUERIES) {
  test(`every prefix of ${label} is refused cleanly: dropped without an id, FORMERR with one`, (t) => {
    const full = packet(label);
    const id = full.readUInt16BE(0);
    for (let n = 0; n < full.length; n++) {
      const parsed = parseQuery(full.subarray(0, n));
      if (n < 2) {
        t.is(parsed.kind, 'drop', `prefix ${n}`);
        continue;
      }
      if (parsed.kind !== 'reject') return t.fail(`prefix ${n}: ${parsed.kind}`);
      t.is(parsed.rcode, 'FORMERR', `prefix ${n}`);
      t.true(parsed.malformed);
      const reply = dnsPacket.decode(parsed.reply);
      t.is(reply.id, id);
      t.is(reply.type, 'response');
      t.is((reply.flags ?? 0) & 0xf, RCODE.FORMERR);
    }
    t.is(parseQuery(full).kind, 'query');
  });
}

test('a name whose compression pointer points at itself or forward is FORMERR, not a hang', (t) => {
  const header = Buffer.from('abcd01000001000000000000', 'hex');
  for (const name of ['c00c', 'c00e0000', '03617069c00c']) {
    const parsed = parseQuery(Buffer.concat([header, Buffer.from(`${name}00010001`, 'hex')]));
    t.like(parsed, { kind: 'reject', rcode: 'FORMERR' }, name);
  }
});

test('responses sent to the proxy are dropped; other opcodes are NOTIMP; EDNS version 1 is BADVERS', (t) => {
  const answer = packet('dnsmasq-aaaa');
  t.like(parseQuery(answer), { kind: 'drop' });
  const status = Buffer.from(packet('node-resolver-a'));
  status[2] = (status[2]! & 0x87) | (2 << 3);
  t.like(parseQuery(status), { kind: 'reject', rcode: 'NOTIMP', malformed: false });
  const v1 = Buffer.from(packet('dig-https'));
  v1[v1.length - 5] = 1; // the OPT record ends: version, flags (2), rdlength (2)
  const parsed = parseQuery(v1);
  if (parsed.kind !== 'reject') return t.fail();
  t.is(parsed.rcode, 'BADVERS');
  const opt = dnsPacket.decode(parsed.reply).additionals?.[0];
  t.like(opt, { type: 'OPT', extendedRcode: 1 });
});

test('two questions are FORMERR: one question per query is all anyone sends', (t) => {
  const two = dnsPacket.encode({ id: 7, type: 'query', questions: [{ name: 'a.test', type: 'A' }, { name: 'b.test', type: 'A' }] });
  t.like(parseQuery(two), { kind: 'reject', rcode: 'FORMERR' });
});

test('the upstream query keeps the question bytes and EDNS but drops the client cookie', (t) => {
  const q = query('dig-a-edns-cookie');
  const up = dnsPacket.decode(upstreamQuery(q, 0x1234));
  t.is(up.id, 0x1234);
  t.true(up.flag_rd);
  t.deepEqual(up.questions, [{ name: 'api.example.test', type: 'A', class: 'IN' }]);
  t.like(up.additionals?.[0], { type: 'OPT', udpPayloadSize: 1232, options: [] });
  t.is(dnsPacket.decode(upstreamQuery(query('node-resolver-a'), 1)).additionals?.length, 0);
  t.true(upstreamQuery(query('dig-mixed-case-mx'), 1).includes(Buffer.from('MaIl')));
});

test('local answers round-trip through dns-packet: A and AAAA records on the asked name, OPT when the client sent one', (t) => {
  const q = query('dig-a-edns-cookie');
  const reply = dnsPacket.decode(localAnswer(q, RCODE.NOERROR, ['192.0.2.1', '192.0.2.2'], 30));
  t.is(reply.id, q.id);
  t.true(reply.flag_qr && reply.flag_aa && reply.flag_rd && reply.flag_ra);
  t.deepEqual(reply.answers, [
    { name: 'api.example.test', type: 'A', ttl: 30, class: 'IN', flush: false, data: '192.0.2.1' },
    { name: 'api.example.test', type: 'A', ttl: 30, class: 'IN', flush: false, data: '192.0.2.2' },
  ]);
  t.like(reply.additionals?.[0], { type: 'OPT', udpPayloadSize: 1232 });
  const v6 = dnsPacket.decode(localAnswer(query('dig-aaaa-noedns'), RCODE.NOERROR, ['2001:2::f0f0:102'], 5));
  t.like(v6.answers?.[0], { type: 'AAAA', data: '2001:2::f0f0:102', ttl: 5 });
  t.is(v6.additionals?.length, 0);
  const nx = dnsPacket.decode(localAnswer(q, RCODE.NXDOMAIN, [], 0));
  t.is((nx.flags ?? 0) & 0xf, RCODE.NXDOMAIN);
  t.false(nx.flag_aa);
});

test('a client takes 512 bytes without EDNS and its own size with; truncation keeps the header, question and OPT', (t) => {
  t.is(clientUdpLimit(query('node-resolver-a')), 512);
  t.is(clientUdpLimit(query('dig-a-edns-cookie')), 1232);
  const q = query('dig-txt-dnssec');
  const cut = dnsPacket.decode(truncated(q, packet('dnsmasq-txt-tcp')));
  t.true(cut.flag_tc);
  t.is(cut.id, q.id);
  t.deepEqual(cut.questions, [{ name: 'Big.Example.Test', type: 'TXT', class: 'IN' }]);
  t.is(cut.answers?.length, 0);
  t.like(cut.additionals?.[0], { type: 'OPT', flag_do: true });
});

test('questionFor asks another name with the same type and class, and refuses names that cannot be labels', (t) => {
  const q = query('dig-aaaa-noedns');
  t.deepEqual(dnsPacket.decode(Buffer.concat([Buffer.from('000001000001000000000000', 'hex'), questionFor('cdn.example.net', q)])).questions, [
    { name: 'cdn.example.net', type: 'AAAA', class: 'IN' },
  ]);
  t.throws(() => questionFor(`${'x'.repeat(64)}.test`, q));
  t.throws(() => questionFor('a..test', q));
});

test('response flags carry RD and CD from the query, and QR and RA', (t) => {
  const q = { ...query('node-resolver-a'), flags: FLAG.RD | FLAG.CD };
  const reply = dnsPacket.decode(localAnswer(q, RCODE.REFUSED, [], 0));
  t.true(reply.flag_rd && reply.flag_cd && reply.flag_qr && reply.flag_ra);
  t.is((reply.flags ?? 0) & 0xf, RCODE.REFUSED);
});
