import test from 'ava';
import { Attribution } from '../../../src/dns/attribution.ts';

function setup(options: { maxAddresses?: number; minTtlSeconds?: number; maxNamesPerAddress?: number } = {}) {
  let now = 1_000_000;
  const attribution = new Attribution({ maxAddresses: options.maxAddresses ?? 100, minTtlSeconds: options.minTtlSeconds ?? 0, now: () => now, ...(options.maxNamesPerAddress ? { maxNamesPerAddress: options.maxNamesPerAddress } : {}) });
  return { attribution, advance: (ms: number) => (now += ms), now: () => now };
}

test('an address answered for a name is attributed to it until the TTL runs out', (t) => {
  const { attribution, advance, now } = setup();
  attribution.remember('192.0.2.10', 'api.example.test', 60);
  t.deepEqual(attribution.lookup('192.0.2.10'), { host: 'api.example.test', expiresAt: now() + 60_000, names: [{ host: 'api.example.test', expiresAt: now() + 60_000 }] });
  advance(59_999);
  t.is(attribution.lookup('192.0.2.10')?.host, 'api.example.test');
  advance(1);
  t.is(attribution.lookup('192.0.2.10'), undefined);
  t.is(attribution.size, 0);
});

test('the TTL floor keeps TTL-0 answers attributable for a while', (t) => {
  const { attribution, advance } = setup({ minTtlSeconds: 30 });
  attribution.remember('192.0.2.10', 'api.example.test', 0);
  advance(29_999);
  t.is(attribution.lookup('192.0.2.10')?.host, 'api.example.test');
  advance(1);
  t.is(attribution.lookup('192.0.2.10'), undefined);
});

test('addresses are matched in one spelling: IPv6 case and compression, IPv4-mapped IPv6', (t) => {
  const { attribution } = setup();
  attribution.remember('2001:DB8:0:0::1', 'v6.example.test', 60);
  attribution.remember('192.0.2.7', 'v4.example.test', 60);
  t.is(attribution.lookup('2001:db8::1')?.host, 'v6.example.test');
  t.is(attribution.lookup('::ffff:192.0.2.7')?.host, 'v4.example.test');
  t.is(attribution.lookup('not-an-ip'), undefined);
  attribution.remember('nonsense', 'x.test', 60);
  t.is(attribution.size, 2, 'a non-address is not remembered');
});

test('bounded: past maxAddresses the least recently answered or looked up address goes', (t) => {
  const { attribution } = setup({ maxAddresses: 3 });
  for (const n of [1, 2, 3]) attribution.remember(`192.0.2.${n}`, `h${n}.test`, 60);
  t.truthy(attribution.lookup('192.0.2.1'), 'a lookup counts as use');
  attribution.remember('192.0.2.4', 'h4.test', 60);
  t.is(attribution.size, 3);
  t.is(attribution.lookup('192.0.2.2'), undefined);
  for (const n of [1, 3, 4]) t.is(attribution.lookup(`192.0.2.${n}`)?.host, `h${n}.test`);
});

test('answering an address again counts as use to the second: within the same second it keeps its place', (t) => {
  const { attribution, advance } = setup({ maxAddresses: 2 });
  attribution.remember('192.0.2.1', 'a.test', 60);
  attribution.remember('192.0.2.2', 'b.test', 60);
  attribution.remember('192.0.2.1', 'a.test', 60);
  attribution.remember('192.0.2.3', 'c.test', 60);
  t.is(attribution.lookup('192.0.2.1'), undefined, 'answered again in the same second: still the least recent');
  advance(1000);
  attribution.remember('192.0.2.2', 'b.test', 60);
  attribution.remember('192.0.2.4', 'd.test', 60);
  t.is(attribution.lookup('192.0.2.3'), undefined, 'answered again a second later: b moved past c');
  t.is(attribution.lookup('192.0.2.2')?.host, 'b.test');
});

test('one address for several names: all are exposed, the most recent first; each expires on its own', (t) => {
  const { attribution, advance } = setup();
  attribution.remember('192.0.2.50', 'a.cdn.test', 100);
  attribution.remember('192.0.2.50', 'b.cdn.test', 10);
  const seen = attribution.lookup('192.0.2.50')!;
  t.is(seen.host, 'b.cdn.test');
  t.deepEqual(seen.names.map((n) => n.host), ['b.cdn.test', 'a.cdn.test']);
  advance(10_000);
  t.deepEqual(attribution.lookup('192.0.2.50')!.names.map((n) => n.host), ['a.cdn.test']);
});

test('a name answered again keeps the later expiry and becomes the most recent', (t) => {
  const { attribution, now } = setup();
  attribution.remember('192.0.2.50', 'a.cdn.test', 100);
  attribution.remember('192.0.2.50', 'b.cdn.test', 100);
  attribution.remember('192.0.2.50', 'a.cdn.test', 5);
  const seen = attribution.lookup('192.0.2.50')!;
  t.deepEqual(seen.names, [{ host: 'a.cdn.test', expiresAt: now() + 100_000 }, { host: 'b.cdn.test', expiresAt: now() + 100_000 }]);
});

test('names per address are bounded too', (t) => {
  const { attribution } = setup({ maxNamesPerAddress: 2 });
  for (const n of [1, 2, 3]) attribution.remember('192.0.2.9', `n${n}.test`, 60);
  t.deepEqual(attribution.lookup('192.0.2.9')!.names.map((n) => n.host), ['n3.test', 'n2.test']);
});

const JUDGE_CASES: [string, string[], string[], { host: string; allowed: boolean } | undefined][] = [
  ['a single allowed name', ['api.example.test'], ['api.example.test'], { host: 'api.example.test', allowed: true }],
  ['a single refused name', ['evil.test'], [], { host: 'evil.test', allowed: false }],
  ['every name allowed: the most recent', ['a.cdn.test', 'b.cdn.test'], ['a.cdn.test', 'b.cdn.test'], { host: 'b.cdn.test', allowed: true }],
  ['an allowed name shares the address with a refused one: refused, naming the refused one', ['good.test', 'evil.test', 'good2.test'], ['good.test', 'good2.test'], { host: 'evil.test', allowed: false }],
  ['nothing known', [], [], undefined],
];
for (const [title, answered, allowedNames, expected] of JUDGE_CASES) {
  test(`judge, ${title}`, (t) => {
    const { attribution } = setup();
    for (const host of answered) attribution.remember('198.51.100.1', host, 60);
    const judged = attribution.judge('198.51.100.1', (host) => allowedNames.includes(host));
    if (expected === undefined) return t.is(judged, undefined);
    t.like(judged, expected);
    t.deepEqual([...judged!.names].sort(), [...answered].sort());
  });
}
