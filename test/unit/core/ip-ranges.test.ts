import test from 'ava';
import { classifyAddress, formatIp, parseCidr, parseIp, vetAddress, type AddressClass } from '../../../src/core/ip-ranges.ts';

const classes: Array<[string, string, AddressClass]> = [
  ['public IPv4 is allowed', '93.184.216.34', { forbidden: false }],
  ['cloud metadata is link-local', '169.254.169.254', { forbidden: true, range: 'link_local' }],
  ['10/8 is private', '10.0.0.1', { forbidden: true, range: 'private' }],
  ['172.16/12 is private at its start', '172.16.0.0', { forbidden: true, range: 'private' }],
  ['172.16/12 is private at its end', '172.31.255.255', { forbidden: true, range: 'private' }],
  ['172.32.0.0 is just past 172.16/12', '172.32.0.0', { forbidden: false }],
  ['192.168/16 is private', '192.168.1.1', { forbidden: true, range: 'private' }],
  ['127/8 is loopback', '127.0.0.53', { forbidden: true, range: 'loopback' }],
  ['0.0.0.0 is unspecified', '0.0.0.0', { forbidden: true, range: 'unspecified' }],
  ['100.64/10 is CGNAT', '100.127.255.254', { forbidden: true, range: 'cgnat' }],
  ['100.128.0.0 is past CGNAT', '100.128.0.0', { forbidden: false }],
  ['224/4 is multicast', '239.255.255.250', { forbidden: true, range: 'multicast' }],
  ['255.255.255.255 is broadcast', '255.255.255.255', { forbidden: true, range: 'broadcast' }],
  ['240/4 is reserved', '240.0.0.1', { forbidden: true, range: 'reserved' }],
  ['TEST-NET-3 is documentation', '203.0.113.7', { forbidden: true, range: 'documentation' }],
  ['198.18/15 is benchmarking', '198.19.0.1', { forbidden: true, range: 'benchmarking' }],
  ['public IPv6 is allowed', '2606:4700::1111', { forbidden: false }],
  ['::1 is loopback', '::1', { forbidden: true, range: 'loopback' }],
  [':: is unspecified', '::', { forbidden: true, range: 'unspecified' }],
  ['fd00::/8 is unique-local', 'fd12:3456::1', { forbidden: true, range: 'unique_local' }],
  ['fc00::/7 covers fc00::', 'fc00::1', { forbidden: true, range: 'unique_local' }],
  ['fe80::/10 is link-local', 'fe80::1', { forbidden: true, range: 'link_local' }],
  ['a zone index does not hide link-local', 'fe80::1%eth0', { forbidden: true, range: 'link_local' }],
  ['febf:: is still link-local', 'febf::1', { forbidden: true, range: 'link_local' }],
  ['ff02::1 is multicast', 'ff02::1', { forbidden: true, range: 'multicast' }],
  ['2001:db8::/32 is documentation', '2001:db8::1', { forbidden: true, range: 'documentation' }],
  ['Teredo is refused', '2001:0:4136:e378::1', { forbidden: true, range: 'teredo' }],
  ['IPv4-compatible ::a.b.c.d is refused', '::8.8.8.8', { forbidden: true, range: 'ipv4_compatible' }],
  ['mapped metadata address', '::ffff:169.254.169.254', { forbidden: true, range: 'link_local', embedded: '169.254.169.254', embedding: 'ipv4_mapped' }],
  ['mapped in hex groups', '::ffff:a9fe:a9fe', { forbidden: true, range: 'link_local', embedded: '169.254.169.254', embedding: 'ipv4_mapped' }],
  ['mapped loopback', '::ffff:127.0.0.1', { forbidden: true, range: 'loopback', embedded: '127.0.0.1', embedding: 'ipv4_mapped' }],
  ['mapped public address', '::ffff:93.184.216.34', { forbidden: false, embedded: '93.184.216.34', embedding: 'ipv4_mapped' }],
  ['NAT64 of a private address', '64:ff9b::10.0.0.1', { forbidden: true, range: 'private', embedded: '10.0.0.1', embedding: 'nat64' }],
  ['NAT64 of a public address', '64:ff9b::5db8:d822', { forbidden: false, embedded: '93.184.216.34', embedding: 'nat64' }],
  ['local-use NAT64 is refused', '64:ff9b:1::1', { forbidden: true, range: 'nat64_local' }],
  ['6to4 of the metadata address', '2002:a9fe:a9fe::1', { forbidden: true, range: 'link_local', embedded: '169.254.169.254', embedding: '6to4' }],
  ['6to4 of a public address', '2002:5db8:d822::1', { forbidden: false, embedded: '93.184.216.34', embedding: '6to4' }],
  ['a name is not an address', 'metadata.google.internal', { forbidden: true, range: 'invalid' }],
  ['an empty string is not an address', '', { forbidden: true, range: 'invalid' }],
  ['an out-of-range octet is not an address', '10.0.0.256', { forbidden: true, range: 'invalid' }],
];

for (const [description, address, expected] of classes) {
  test(`classifyAddress: ${description} (${address})`, (t) => t.deepEqual(classifyAddress(address), expected));
}

const cidrs = (...texts: string[]) => texts.map((text) => parseCidr(text)!);

const vets: Array<[string, string, string[], boolean, string | undefined]> = [
  ['a public address needs no listing', '93.184.216.34', [], true, undefined],
  ['a private address is refused without a listing', '10.0.0.1', [], false, undefined],
  ['a listed CIDR opens a private address', '10.0.0.1', ['10.0.0.0/8'], true, '10.0.0.0/8'],
  ['a listed single address opens the metadata address', '169.254.169.254', ['169.254.169.254'], true, '169.254.169.254/32'],
  ['a listing elsewhere opens nothing', '10.0.0.1', ['10.1.0.0/16'], false, undefined],
  ['a catch-all 0.0.0.0/0 does not open metadata', '169.254.169.254', ['0.0.0.0/0'], false, undefined],
  ['a listing wider than the private range opens nothing', '10.0.0.1', ['8.0.0.0/6'], false, undefined],
  ['::/0 does not open unique-local', 'fd00::1', ['::/0'], false, undefined],
  ['an IPv4 listing opens its mapped form', '::ffff:10.0.0.1', ['10.0.0.0/8'], true, '10.0.0.0/8'],
  ['a narrow IPv6 listing opens a mapped address', '::ffff:10.0.0.1', ['::ffff:10.0.0.0/104'], true, '::ffff:a00:0/104'],
  ['the whole mapped range does not open a mapped private address', '::ffff:10.0.0.1', ['::ffff:0:0/96'], false, undefined],
  ['an IPv6 listing opens unique-local', 'fd00::1', ['fd00::/8'], true, 'fd00::/8'],
  ['an invalid address stays refused', 'localhost', ['0.0.0.0/0'], false, undefined],
];

for (const [description, address, listed, allowed, allowedBy] of vets) {
  test(`vetAddress: ${description}`, (t) => {
    const verdict = vetAddress(address, cidrs(...listed));
    t.is(verdict.allowed, allowed);
    t.is(verdict.allowedBy, allowedBy);
  });
}

test('parseCidr clears host bits and formats canonically', (t) => {
  t.is(parseCidr('10.1.2.3/8')?.text, '10.0.0.0/8');
  t.is(parseCidr('2001:DB8:0:0::1/32')?.text, '2001:db8::/32');
  t.is(parseCidr('192.168.1.1')?.text, '192.168.1.1/32');
  t.is(parseCidr('::1')?.text, '::1/128');
});

test('parseCidr refuses what is not a CIDR', (t) => {
  for (const bad of ['', '10.0.0.0/33', '::/129', '10.0.0.0/-1', '10.0.0.0/8/8', 'example.com/24', '10.0.0/8', '10.0.0.0/ 8']) {
    t.is(parseCidr(bad), undefined, bad);
  }
});

test('formatIp round-trips through parseIp and compresses zeros', (t) => {
  for (const [input, expected] of [
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['::', '::'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['[::ffff:1.2.3.4]', '::ffff:102:304'],
    ['203.0.113.9', '203.0.113.9'],
  ] as const) {
    t.is(formatIp(parseIp(input)!), expected, input);
  }
});
