import test from 'ava';
import { EgressdError } from '../../../src/core/errors.ts';
import { DNS_DEFAULTS, dnsProxyConfig } from '../../../src/dns/config.ts';

test('defaults: port 15053 on loopback of both families, NXDOMAIN for denied names, no auto-allocation', (t) => {
  const config = dnsProxyConfig({});
  t.like(config, { port: 15053, resolvConf: '/etc/resolv.conf', clusterDomain: 'cluster.local', denyRcode: 'NXDOMAIN', autoAllocate: false });
  t.deepEqual(config.bind, ['127.0.0.1', '::1']);
  t.true(Object.isFrozen(config));
  t.true(Object.isFrozen(config.bind));
  t.is(DNS_DEFAULTS.port, 15053);
});

test('the cluster domain is normalized', (t) => {
  t.is(dnsProxyConfig({ clusterDomain: 'Corp.Cluster.' }).clusterDomain, 'corp.cluster');
});

test('every bad value is reported at once with EGRESSD_ERR_USAGE', (t) => {
  const err = t.throws(
    () =>
      dnsProxyConfig({
        port: 70000,
        bind: ['localhost'],
        upstreams: [{ host: 'dns.example.test', port: 0 }],
        clusterDomain: '*.x',
        denyRcode: 'SERVFAIL' as 'NXDOMAIN',
        cacheSize: 0,
        localTtlSeconds: -1,
      }),
    { instanceOf: EgressdError },
  );
  t.is(err?.code, 'EGRESSD_ERR_USAGE');
  const problems = (err?.context.problems as string[]).join('\n');
  for (const word of ['port: 70000', '"localhost" is not an IP', 'upstream "dns.example.test"', 'upstream port 0', 'clusterDomain', 'denyRcode', 'cacheSize', 'localTtlSeconds']) {
    t.true(problems.includes(word), word);
  }
});

test('an empty upstream list is refused rather than meaning "none"', (t) => {
  t.throws(() => dnsProxyConfig({ upstreams: [] }), { message: /upstreams: give at least one/ });
});

test('listeners must be on loopback: a wildcard UDP socket would answer from the pod address, which conntrack cannot map back', (t) => {
  t.deepEqual(dnsProxyConfig({ bind: ['127.0.0.53', '::1'] }).bind, ['127.0.0.53', '::1']);
  for (const address of ['0.0.0.0', '::', '10.1.2.3', '::ffff:127.0.0.1']) {
    const err = t.throws(() => dnsProxyConfig({ bind: [address] }), { instanceOf: EgressdError });
    t.regex(err!.message, new RegExp(`"${address.replace(/\./g, '\\.')}" is not a loopback address`), address);
  }
});
