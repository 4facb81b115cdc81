import test from 'ava';
import { execFileSync } from 'node:child_process';
import { allocateVips, homeSlot, slotAddresses, VIP_SLOTS } from '../../../src/dns/vip.ts';
import { parseCidr, cidrContains, parseIp } from '../../../src/core/ip-ranges.ts';

const HOSTS = ['api.example.test', 'vip.example.test', 'db.internal.example', 'pay.stripe.test', 'storage.googleapis.test'];

test('VIPs are fixed by the host names alone: these values must never change between releases', (t) => {
  const table = allocateVips(HOSTS);
  t.deepEqual(table.addressesOf('api.example.test'), { ipv4: '240.240.146.14', ipv6: '2001:2::f0f0:920e' });
  t.deepEqual(table.addressesOf('vip.example.test'), { ipv4: '240.240.34.171', ipv6: '2001:2::f0f0:22ab' });
});

test('the same hosts in any order, or in another process, get the same VIPs', (t) => {
  const first = allocateVips(HOSTS);
  const shuffled = allocateVips([...HOSTS].reverse().concat(HOSTS[0]!));
  for (const host of HOSTS) t.deepEqual(shuffled.addressesOf(host), first.addressesOf(host));
  const script = `import { allocateVips } from './src/dns/vip.ts'; const t = allocateVips(${JSON.stringify(HOSTS)}); console.log(JSON.stringify(${JSON.stringify(HOSTS)}.map((h) => t.addressesOf(h))));`;
  const other = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' })) as unknown[];
  t.deepEqual(other, HOSTS.map((h) => first.addressesOf(h)));
});

test('every VIP is inside the reserved ranges and maps back to its host, in either family and any spelling', (t) => {
  const v4 = parseCidr('240.240.0.0/16')!;
  const v6 = parseCidr('2001:2::/48')!;
  const table = allocateVips(HOSTS);
  for (const host of HOSTS) {
    const vip = table.addressesOf(host)!;
    t.true(cidrContains(v4, parseIp(vip.ipv4)!));
    t.true(cidrContains(v6, parseIp(vip.ipv6)!));
    t.is(table.hostOf(vip.ipv4), host);
    t.is(table.hostOf(vip.ipv6), host);
    t.is(table.hostOf(`::ffff:${vip.ipv4}`), host);
    t.is(table.hostOf(vip.ipv6.toUpperCase()), host);
  }
  t.is(table.hostOf('192.0.2.1'), undefined);
  t.is(table.hostOf('not an address'), undefined);
});

test('no VIP ends in .0 or .255, and the slots cover 240.240.0.1 to 240.240.255.254', (t) => {
  t.is(slotAddresses(0).ipv4, '240.240.0.1');
  t.is(slotAddresses(253).ipv4, '240.240.0.254');
  t.is(slotAddresses(254).ipv4, '240.240.1.1');
  t.is(slotAddresses(VIP_SLOTS - 1).ipv4, '240.240.255.254');
  t.is(slotAddresses(VIP_SLOTS - 1).ipv6, '2001:2::f0f0:fffe');
});

/** Hosts that hash to one slot, found by search (deterministic: the hash is). */
function collidingHosts(count: number): string[] {
  const bySlot = new Map<number, string[]>();
  for (let i = 0; ; i++) {
    const host = `h${i}.collide.test`;
    const slot = homeSlot(host);
    const list = bySlot.get(slot) ?? [];
    list.push(host);
    bySlot.set(slot, list);
    if (list.length === count) return list;
  }
}

test('hosts that hash to one slot: the first in sort order keeps it, the others take the next free slots', (t) => {
  const [a, b, c] = collidingHosts(3).sort() as [string, string, string];
  const home = homeSlot(a);
  const table = allocateVips([c, b, a]);
  t.is(table.addressesOf(a)!.ipv4, slotAddresses(home).ipv4);
  t.is(table.addressesOf(b)!.ipv4, slotAddresses((home + 1) % VIP_SLOTS).ipv4);
  t.is(table.addressesOf(c)!.ipv4, slotAddresses((home + 2) % VIP_SLOTS).ipv4);
  t.deepEqual(allocateVips([a, b, c]).addressesOf(c), table.addressesOf(c), 'and the outcome does not depend on input order');
  t.deepEqual(allocateVips([a, ...HOSTS]).addressesOf(a), table.addressesOf(a), 'unrelated hosts leave a host alone');
});

test('a host that is not in the table has no VIP', (t) => {
  t.is(allocateVips([]).addressesOf('api.example.test'), undefined);
  t.is(allocateVips([]).size, 0);
});
