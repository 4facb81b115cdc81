import test from 'ava';
import { ipv4ToUint32, ipv6ToWords, parseCidr } from '../../../src/policy/cidr.ts';
import { checkHostPattern, patternCovers } from '../../../src/policy/names.ts';

test('ipv4ToUint32 reads a dotted quad, and each prefix of it only when that is a whole quad too', (t) => {
  const text = '192.168.10.255';
  t.is(ipv4ToUint32(text), ((192 * 256 + 168) * 256 + 10) * 256 + 255);
  for (let i = 0; i < text.length; i++) {
    const prefix = text.slice(0, i);
    const whole = /^\d+\.\d+\.\d+\.\d+$/.test(prefix);
    t.is(ipv4ToUint32(prefix) >= 0, whole, prefix);
  }
  t.is(ipv4ToUint32('192.168.10.25'), ((192 * 256 + 168) * 256 + 10) * 256 + 25);
});

test('ipv4ToUint32 refuses what inet_aton-style parsers would read differently', (t) => {
  for (const bad of ['1.2.3.256', '01.2.3.4', '1.2.3', '1.2.3.4.5', '1..2.3', ' 1.2.3.4', '1.2.3.4 ', '0x1.2.3.4', '4294967295']) t.is(ipv4ToUint32(bad), -1, bad);
  t.is(ipv4ToUint32('0.0.0.0'), 0);
  t.is(ipv4ToUint32('255.255.255.255'), 0xffffffff);
});

test('ipv6ToWords expands ::, embedded IPv4 and full forms alike', (t) => {
  t.deepEqual(ipv6ToWords('2001:db8::1'), [0x20010db8, 0, 0, 1]);
  t.deepEqual(ipv6ToWords('::ffff:10.1.2.3'), [0, 0, 0xffff, 0x0a010203]);
  t.deepEqual(ipv6ToWords('::'), [0, 0, 0, 0]);
  t.deepEqual(ipv6ToWords('1:2:3:4:5:6:7:8'), [0x10002, 0x30004, 0x50006, 0x70008]);
  t.is(ipv6ToWords('1.2.3.4'), undefined);
  t.is(ipv6ToWords('2001:db8:::1'), undefined);
});

test('parseCidr clears host bits and prints the canonical form', (t) => {
  t.like(parseCidr('10.1.2.3/16'), { family: 4, prefix: 16, words: [0x0a010000], text: '10.1.0.0/16' });
  t.like(parseCidr('10.1.2.3'), { prefix: 32, text: '10.1.2.3' });
  t.like(parseCidr('2001:DB8:0:0::1/32'), { family: 6, prefix: 32, text: '2001:db8::/32' });
  t.like(parseCidr('::1'), { prefix: 128, text: '::1' });
  for (const bad of ['10.0.0.0/33', '10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/1.5', 'fe80::/129', 'example.com', '10.0.0.0/8/8', '']) t.is(parseCidr(bad), undefined, bad);
});

test('checkHostPattern: exact names and *.suffix wildcards, normalized; everything else refused', (t) => {
  t.deepEqual(checkHostPattern('API.Example.com.'), { ok: true, host: 'api.example.com', wildcard: false });
  t.deepEqual(checkHostPattern('*.Example.com'), { ok: true, host: '*.example.com', wildcard: true });
  t.deepEqual(checkHostPattern('münchen.example'), { ok: true, host: 'xn--mnchen-3ya.example', wildcard: false });
  for (const bad of ['*', 'a.*.example.com', '*example.com', '**.example.com', 'exa mple.com', '-a.example.com', 'a-.example.com', '', '10.0.0.1', '[::1]', `${'a'.repeat(64)}.com`]) {
    t.false(checkHostPattern(bad).ok, bad);
  }
});

test('patternCovers: exact, wildcard below its suffix, never the apex', (t) => {
  t.true(patternCovers('api.example.com', 'api.example.com'));
  t.true(patternCovers('*.example.com', 'api.example.com'));
  t.true(patternCovers('*.example.com', 'a.b.example.com'));
  t.true(patternCovers('*.example.com', '*.eu.example.com'));
  t.true(patternCovers('*.example.com', '*.example.com'));
  t.false(patternCovers('*.example.com', 'example.com'));
  t.false(patternCovers('*.example.com', 'badexample.com'));
  t.false(patternCovers('*.eu.example.com', '*.example.com'));
  t.false(patternCovers('api.example.com', '*.example.com'));
});
