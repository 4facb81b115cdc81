import test from 'ava';
import dnsPacket, { type Answer } from 'dns-packet';
import { cacheTtl, DnsCache } from '../../../src/dns/cache.ts';
import { agedCopy, RCODE, scanMessage } from '../../../src/dns/wire.ts';
import { packet } from './_packets.ts';

/** A clock the test moves by hand: expiry is tested without sleeping. */
function clock(start = 1_700_000_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

function store(cache: DnsCache, key: string, label: string, ttl: number): void {
  const bytes = packet(label);
  cache.set(key, bytes, scanMessage(bytes), [], ttl);
}

test('an answer is served until its TTL runs out, aged by the whole seconds that passed', (t) => {
  const c = clock();
  const cache = new DnsCache({ maxEntries: 10, maxTtlSeconds: 86_400, now: c.now });
  store(cache, 'k', 'dnsmasq-aaaa', 300);
  t.is(cache.get('k')?.elapsed, 0);
  c.advance(1999);
  const hit = cache.get('k')!;
  t.is(hit.elapsed, 1);
  const aged = dnsPacket.decode(agedCopy(hit.answer.bytes, hit.answer.layout, 7, Buffer.alloc(0), hit.elapsed));
  t.is((aged.answers?.[0] as { ttl: number }).ttl, 299);
  c.advance(298_000);
  t.truthy(cache.get('k'), 'at 299.999 s the answer is still good');
  c.advance(1);
  t.is(cache.get('k'), undefined, 'at 300 s it is gone');
  t.is(cache.size, 0, 'and no longer takes room');
});

test('the TTL is capped by cacheMaxTtlSeconds and a TTL of 0 is not stored', (t) => {
  const c = clock();
  const cache = new DnsCache({ maxEntries: 10, maxTtlSeconds: 60, now: c.now });
  store(cache, 'long', 'dnsmasq-aaaa', 86_400);
  t.false(cache.set('zero', packet('dnsmasq-aaaa'), scanMessage(packet('dnsmasq-aaaa')), [], 0));
  t.is(cache.get('zero'), undefined);
  c.advance(60_000);
  t.is(cache.get('long'), undefined);
});

test('the cache is bounded: past maxEntries the least recently used answer goes, recency counted in seconds', (t) => {
  const c = clock();
  const cache = new DnsCache({ maxEntries: 3, maxTtlSeconds: 3600, now: c.now });
  for (const k of ['a', 'b', 'c']) store(cache, k, 'dnsmasq-mx', 300);
  t.truthy(cache.get('a'), 'used in the second it was stored: still the least recent');
  c.advance(1000);
  t.truthy(cache.get('a'), 'used a second later, so b is now the least recent');
  store(cache, 'd', 'dnsmasq-mx', 300);
  t.is(cache.size, 3);
  t.is(cache.get('b'), undefined);
  t.truthy(cache.get('a'));
  t.truthy(cache.get('c'));
  t.truthy(cache.get('d'));
});

const soa = (ttl: number, minimum: number): Answer => ({
  name: 'example.test',
  type: 'SOA',
  ttl,
  class: 'IN',
  data: { mname: 'ns.example.test', rname: 'h.example.test', serial: 1, refresh: 1, retry: 1, expire: 1, minimum },
});
const a = (ttl: number): Answer => ({ name: 'x.example.test', type: 'A', ttl, class: 'IN', data: '192.0.2.1' });
const cname = (ttl: number): Answer => ({ name: 'w.example.test', type: 'CNAME', ttl, class: 'IN', data: 'x.example.test' });

const TTL_CASES: [string, Parameters<typeof cacheTtl>[0], number | undefined][] = [
  ['positive: the smallest TTL of the answer records', { rcode: RCODE.NOERROR, truncated: false, answers: [cname(600), a(30), a(90)], authorities: [] }, 30],
  ['NXDOMAIN: the lesser of the SOA TTL and its minimum (RFC 2308)', { rcode: RCODE.NXDOMAIN, truncated: false, answers: [], authorities: [soa(3600, 60)] }, 60],
  ['NODATA: the same, the SOA TTL being smaller', { rcode: RCODE.NOERROR, truncated: false, answers: [], authorities: [soa(20, 300)] }, 20],
  ['negative without an SOA: not cached', { rcode: RCODE.NXDOMAIN, truncated: false, answers: [], authorities: [] }, undefined],
  ['SERVFAIL: not cached', { rcode: RCODE.SERVFAIL, truncated: false, answers: [], authorities: [soa(60, 60)] }, undefined],
  ['REFUSED: not cached', { rcode: RCODE.REFUSED, truncated: false, answers: [a(60)], authorities: [] }, undefined],
  ['truncated: not cached', { rcode: RCODE.NOERROR, truncated: true, answers: [a(60)], authorities: [] }, undefined],
];
for (const [title, facts, expected] of TTL_CASES) {
  test(`cacheTtl, ${title}`, (t) => t.is(cacheTtl(facts), expected));
}
