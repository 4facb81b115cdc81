import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EgressdError } from '../../../src/core/errors.ts';
import { parseResolvConf, readResolvConf } from '../../../src/dns/resolv-conf.ts';

const KUBERNETES_POD = `# written by the kubelet
search shop.svc.cluster.local svc.cluster.local cluster.local ec2.internal
nameserver 10.96.0.10
options ndots:5
`;

test('a pod resolv.conf as the kubelet writes it', (t) => {
  t.deepEqual(parseResolvConf(KUBERNETES_POD), {
    nameservers: ['10.96.0.10'],
    search: ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local', 'ec2.internal'],
    ndots: 5,
    timeout: 5,
    attempts: 2,
    warnings: [],
  });
});

test('several nameservers in order, IPv6 with a scope, comments, options capped as glibc does, the last search wins', (t) => {
  const conf = parseResolvConf(
    ['domain first.test', 'nameserver 192.0.2.53 ; trailing comment', 'nameserver fe80::1%eth0', '# nameserver 192.0.2.99', 'nameserver dns.example.test', 'search Second.Test. third.test', 'options ndots:99 timeout:60 attempts:0 rotate edns0', 'sortlist 130.155.160.0/255.255.240.0'].join('\r\n'),
  );
  t.deepEqual(conf.nameservers, ['192.0.2.53', 'fe80::1%eth0']);
  t.deepEqual(conf.search, ['second.test', 'third.test']);
  t.like(conf, { ndots: 15, timeout: 30, attempts: 1 });
  t.deepEqual(conf.warnings, ['line 5: nameserver "dns.example.test" is not an IP address']);
});

test('reading: a missing file and a file without nameservers are EGRESSD_ERR_RESOLV_CONF', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'egressd-resolv-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const missing = await t.throwsAsync(readResolvConf(join(dir, 'nope')), { instanceOf: EgressdError });
  t.is(missing?.code, 'EGRESSD_ERR_RESOLV_CONF');
  t.regex(missing?.message ?? '', /ENOENT/);
  writeFileSync(join(dir, 'empty'), 'search cluster.local\nnameserver localhost\n');
  const empty = await t.throwsAsync(readResolvConf(join(dir, 'empty')), { instanceOf: EgressdError });
  t.is(empty?.code, 'EGRESSD_ERR_RESOLV_CONF');
  t.regex(empty?.message ?? '', /names no nameserver.*"localhost" is not an IP address/);
  writeFileSync(join(dir, 'good'), KUBERNETES_POD);
  t.deepEqual((await readResolvConf(join(dir, 'good'))).nameservers, ['10.96.0.10']);
});
