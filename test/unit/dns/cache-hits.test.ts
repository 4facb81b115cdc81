import test from 'ava';
import dnsPacket, { type Answer } from 'dns-packet';
import { readQueryKey } from '../../../src/dns/query-key.ts';
import { RCODE, scanMessage } from '../../../src/dns/wire.ts';
import { allowlist } from './_policy.ts';
import { dataOf, metric, query, rcodeOf, tcpExchange, udp, udpExchange } from './_dns-client.ts';
import { startWorld } from './_proxy.ts';

/**
 * The cache-hit path (cache-hits.ts) through a real proxy on loopback: what
 * it answers must be what the full path answers, and everything the full
 * path guarantees must hold for it too.
 */

/** The same question with EDNS plus a keepalive option: hop-by-hop, so the same cache key, but left to the full parser. */
function viaFullPath(name: string, id: number): Buffer {
  return dnsPacket.encode({
    id,
    type: 'query',
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: 'A' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, options: [{ code: 11, data: Buffer.alloc(0) }] } as Answer],
  });
}

function viaHitPath(name: string, id: number): Buffer {
  return dnsPacket.encode({ id, type: 'query', flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: 'A' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as Answer] });
}

const ttls = (bytes: Buffer): number[] => scanMessage(bytes).ttlOffsets.map((at) => bytes.readUInt32BE(at));
const withoutId = (bytes: Buffer): Buffer => bytes.subarray(2);

test('a cache hit is the full path answer byte for byte but for the id, with TTLs aged by the clock', async (t) => {
  const w = await startWorld(t);
  t.not(readQueryKey(viaHitPath('x.wild.example.test', 1)), undefined);
  t.is(readQueryKey(viaFullPath('x.wild.example.test', 1)), undefined);
  await udpExchange(w.port, [viaHitPath('x.wild.example.test', 1)]);
  const full = await udpExchange(w.port, [viaFullPath('x.wild.example.test', 2)]);
  const hit = await udpExchange(w.port, [viaHitPath('x.wild.example.test', 3)]);
  t.is(full.readUInt16BE(0), 2);
  t.is(hit.readUInt16BE(0), 3);
  t.deepEqual(withoutId(hit), withoutId(full));
  t.deepEqual(ttls(hit), [120]);
  w.advance(30_500);
  const agedFull = await udpExchange(w.port, [viaFullPath('x.wild.example.test', 4)]);
  const agedHit = await udpExchange(w.port, [viaHitPath('x.wild.example.test', 5)]);
  t.deepEqual(ttls(agedHit), [90]);
  t.deepEqual(withoutId(agedHit), withoutId(agedFull));
  t.is(w.server.count('x.wild.example.test'), 1);
  t.is(await metric(w.proxy.registry, 'egressd_dns_queries_total', { type: 'A', result: 'cached' }), 4);
  t.is(await metric(w.proxy.registry, 'egressd_dns_cache_lookups_total', { result: 'hit' }), 4);
});

test('the question comes back as the client wrote it (0x20 letter case), over UDP and TCP', async (t) => {
  const w = await startWorld(t);
  await udp(w.port, query('x.wild.example.test', 'A'));
  for (const name of ['X.wIlD.ExAmPlE.tEsT', 'x.WILD.example.TEST']) {
    const sent = query(name, 'A', { id: 77 });
    const [viaUdp, viaTcp] = [await udpExchange(w.port, [sent]), (await tcpExchange(w.proxy.addresses.tcp[0]!.port, [sent]))[0]!];
    for (const reply of [viaUdp, viaTcp]) {
      t.deepEqual(reply.subarray(12, sent.length), sent.subarray(12), name);
      t.deepEqual(dataOf(dnsPacket.decode(reply), 'A'), ['192.0.2.11']);
    }
  }
  t.is(w.server.count('x.wild.example.test'), 1);
});

test('a reload that denies a cached name stops the hit path: NXDOMAIN and an audit record on every query; allowed again, the cache answers', async (t) => {
  const shut = allowlist(
    `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: other, namespace: default}\nspec:\n  hosts: [other.example.test]\n  ports: [{number: 443, name: https, protocol: HTTPS}]\n  resolution: NONE\n`,
  );
  let current = allowlist();
  const w = await startWorld(t, { policy: () => current });
  t.deepEqual(dataOf(await udp(w.port, query('x.wild.example.test', 'A')), 'A'), ['192.0.2.11']);
  current = shut;
  for (let i = 0; i < 3; i++) t.is(rcodeOf(await udp(w.port, query('x.wild.example.test', 'A'))), RCODE.NXDOMAIN);
  t.is(w.audit.items.length, 3);
  for (const record of w.audit.items) t.like(record, { decision: 'deny', host: 'x.wild.example.test', reason: 'no_matching_rule', protocol: 'dns' });
  t.is(await metric(w.proxy.registry, 'egressd_dns_queries_total', { type: 'A', result: 'denied' }), 3);
  current = allowlist();
  t.deepEqual(dataOf(await udp(w.port, query('x.wild.example.test', 'A')), 'A'), ['192.0.2.11']);
  t.is(w.server.count('x.wild.example.test'), 1, 'the cached answer outlived the denial, and is served again once allowed');
  t.is(w.audit.items.length, 3);
});

test('REPORT: a cached would-deny answer is audited on every query', async (t) => {
  const w = await startWorld(t, { namespace: 'audit' });
  for (let i = 0; i < 3; i++) t.deepEqual(dataOf(await udp(w.port, query('evil.test', 'A')), 'A'), ['192.0.2.66']);
  t.is(w.server.count('evil.test'), 1);
  t.is(w.audit.items.length, 3);
  for (const record of w.audit.items) t.like(record, { decision: 'allow', would_deny: true, host: 'evil.test' });
});

test('a cache hit keeps the attribution of its addresses alive for their remaining TTL', async (t) => {
  const w = await startWorld(t);
  await udp(w.port, query('x.wild.example.test', 'A'));
  t.is(w.proxy.attribution.lookup('192.0.2.11')?.host, 'x.wild.example.test');
  w.advance(100_000);
  const hit = await udp(w.port, query('x.wild.example.test', 'A'));
  t.is((hit.answers![0] as { ttl: number }).ttl, 20);
  w.advance(25_000);
  t.is(w.proxy.attribution.lookup('192.0.2.11')?.host, 'x.wild.example.test', 'past the first answer\'s TTL: the hit renewed it, with the 30 s floor');
  w.advance(5_000);
  t.is(w.proxy.attribution.lookup('192.0.2.11'), undefined);
});

test('an answer bigger than the client takes is still sent truncated; a client that takes it gets it from the cache', async (t) => {
  const w = await startWorld(t);
  await udp(w.port, query('big.wild.example.test', 'TXT', { udpSize: 1232 }));
  const cut = await udp(w.port, query('big.wild.example.test', 'TXT', { udpSize: 512 }));
  t.true(cut.flag_tc);
  t.is(cut.answers?.length, 0);
  const whole = await udp(w.port, query('big.wild.example.test', 'TXT', { udpSize: 1232 }));
  t.false(whole.flag_tc);
  t.is(w.server.count('big.wild.example.test'), 1);
  t.is(await metric(w.proxy.registry, 'egressd_dns_truncated_responses_total'), 1);
});

test('every prefix of a cached query is dropped or FORMERR, and counted; the cached answer is still served', async (t) => {
  const w = await startWorld(t);
  const good = viaHitPath('x.wild.example.test', 0x4242);
  await udpExchange(w.port, [good]);
  for (let n = 0; n < good.length; n++) {
    const first = await udpExchange(w.port, [good.subarray(0, n), good]);
    if (n < 2) t.is(first.readUInt16BE(0), 0x4242, `${n} bytes: nothing sent back`);
    else t.is(first[3]! & 0xf, RCODE.FORMERR, `${n} bytes`);
  }
  t.is(await metric(w.proxy.registry, 'egressd_dns_malformed_packets_total', { transport: 'udp' }), good.length);
  t.deepEqual(dataOf(await udp(w.port, good), 'A'), ['192.0.2.11']);
  t.is(w.server.count('x.wild.example.test'), 1);
});
