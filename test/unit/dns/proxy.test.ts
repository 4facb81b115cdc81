import test from 'ava';
import dnsPacket from 'dns-packet';
import { EgressdError } from '../../../src/core/errors.ts';
import { dnsProxyConfig, startDnsProxy } from '../../../src/dns/index.ts';
import { createAuditSink } from '../../../src/core/audit.ts';
import { createLogger } from '../../../src/core/logger.ts';
import { RCODE } from '../../../src/dns/wire.ts';
import { dataOf, metric, query, rcodeOf, tcp, tcpExchange, udp, udpExchange } from './_dns-client.ts';
import { startWorld } from './_proxy.ts';

test('an allowed name is forwarded, then served from the cache with its TTL aged by the clock', async (t) => {
  const w = await startWorld(t);
  const first = await udp(w.port, query('x.wild.example.test', 'A'));
  t.deepEqual(dataOf(first, 'A'), ['192.0.2.11']);
  t.is((first.answers![0] as { ttl: number }).ttl, 120);
  w.advance(30_500);
  const second = await udp(w.port, query('X.Wild.Example.Test', 'A'));
  t.deepEqual(dataOf(second, 'A'), ['192.0.2.11']);
  t.is((second.answers![0] as { ttl: number }).ttl, 90);
  t.is(second.questions![0]!.name, 'X.Wild.Example.Test', 'the question is echoed as this client wrote it');
  t.is(w.server.count('x.wild.example.test'), 1);
  t.is(await metric(w.proxy.registry, 'egressd_dns_cache_lookups_total', { result: 'hit' }), 1);
  t.is(await metric(w.proxy.registry, 'egressd_dns_queries_total', { type: 'A', result: 'cached' }), 1);
  t.is(await metric(w.proxy.registry, 'egressd_dns_queries_total', { type: 'A', result: 'forwarded' }), 1);
  t.true((await metric(w.proxy.registry, 'egressd_dns_upstream_duration_seconds', { transport: 'udp' })) >= 1);
  w.advance(90_000);
  await udp(w.port, query('x.wild.example.test', 'A'));
  t.is(w.server.count('x.wild.example.test'), 2, 'expired at the TTL: asked again');
  t.deepEqual(w.audit.items, [], 'allowed queries write no audit record');
});

test('the addresses of every answer are attributed to the asked name for their TTL', async (t) => {
  const w = await startWorld(t);
  await udp(w.port, query('x.wild.example.test', 'A'));
  t.like(w.proxy.attribution.lookup('192.0.2.11'), { host: 'x.wild.example.test' });
  t.like(w.proxy.nameFor('192.0.2.11', () => true), { host: 'x.wild.example.test', allowed: true, source: 'dns' });
  w.advance(120_000);
  t.is(w.proxy.attribution.lookup('192.0.2.11'), undefined);
});

test('REGISTRY_ONLY: a name no rule allows gets NXDOMAIN and an audit record, and never reaches the upstream', async (t) => {
  const w = await startWorld(t);
  const reply = await udp(w.port, query('evil.test', 'A'));
  t.is(rcodeOf(reply), RCODE.NXDOMAIN);
  t.is(w.server.count('evil.test'), 0);
  t.is(w.audit.items.length, 1);
  t.like(w.audit.items[0], {
    component: 'agent',
    decision: 'deny',
    reason: 'no_matching_rule',
    mode: 'REGISTRY_ONLY',
    would_deny: false,
    host: 'evil.test',
    host_source: 'dns',
    protocol: 'dns',
    listener: 'dns',
    namespace: 'default',
    port: null,
    dst: null,
    error: null,
  });
  t.regex(w.audit.items[0]!.src ?? '', /^127\.0\.0\.1:\d+$/);
  t.is(await metric(w.proxy.registry, 'egressd_dns_queries_total', { type: 'A', result: 'denied' }), 1);
  t.is(w.proxy.attribution.lookup('192.0.2.66'), undefined);
});

test('a ServiceEntry not exported to the namespace is denied with not_exported; REFUSED when configured', async (t) => {
  const w = await startWorld(t, { config: { denyRcode: 'REFUSED' } });
  const reply = await udp(w.port, query('billing.example.test', 'A'));
  t.is(rcodeOf(reply), RCODE.REFUSED);
  t.like(w.audit.items[0], { reason: 'not_exported', rule: 'ServiceEntry/billing/private' });
});

test('REPORT: a name that would be denied is forwarded and audited with would_deny', async (t) => {
  const w = await startWorld(t, { namespace: 'audit' });
  t.deepEqual(dataOf(await udp(w.port, query('evil.test', 'A')), 'A'), ['192.0.2.66']);
  t.like(w.audit.items[0], { decision: 'allow', would_deny: true, mode: 'REPORT', reason: 'no_matching_rule', host: 'evil.test' });
  t.like(w.proxy.nameFor('192.0.2.66', (host) => host !== 'evil.test'), { host: 'evil.test', allowed: false });
});

test('ALLOW_ANY: forwarded, no audit record', async (t) => {
  const w = await startWorld(t, { namespace: 'lenient' });
  t.deepEqual(dataOf(await udp(w.port, query('evil.test', 'A')), 'A'), ['192.0.2.66']);
  t.deepEqual(w.audit.items, []);
});

test('cluster names are forwarded without asking the policy, even before one is loaded; other names are SERVFAIL until then', async (t) => {
  const w = await startWorld(t, { policy: () => undefined });
  t.deepEqual(dataOf(await udp(w.port, query('db.shop.svc.cluster.local', 'A')), 'A'), ['10.96.3.4']);
  t.deepEqual(w.audit.items, []);
  t.is(rcodeOf(await udp(w.port, query('api.example.test', 'A'))), RCODE.SERVFAIL);
  t.like(w.audit.items[0], { decision: 'deny', reason: 'config_not_loaded', mode: null, error: 'no valid configuration loaded yet' });
  t.is(w.server.count('api.example.test'), 0);
});

test('ServiceEntry addresses and STATIC endpoints are answered locally, per family, and remembered', async (t) => {
  const w = await startWorld(t);
  const fixed = await udp(w.port, query('fixed.example.test', 'A', { udpSize: 1232 }));
  t.deepEqual(dataOf(fixed, 'A'), ['192.0.2.20']);
  t.true(fixed.flag_aa);
  t.is((fixed.answers![0] as { ttl: number }).ttl, 30);
  t.deepEqual(dataOf(await udp(w.port, query('fixed.example.test', 'AAAA')), 'AAAA'), ['2001:db8::20']);
  t.deepEqual(dataOf(await udp(w.port, query('static.example.test', 'A')), 'A'), ['192.0.2.31', '192.0.2.32']);
  t.deepEqual(dataOf(await udp(w.port, query('deep.name.fixed.example.test', 'A')), 'A'), ['192.0.2.20'], 'a wildcard with addresses answers for any name under it');
  t.is(w.server.asked.length, 0);
  t.like(w.proxy.attribution.lookup('192.0.2.32'), { host: 'static.example.test' });
});

test('a host without addresses gets its VIP in both families; the VIP maps back to the host', async (t) => {
  const w = await startWorld(t);
  t.deepEqual(dataOf(await udp(w.port, query('api.example.test', 'A')), 'A'), ['240.240.146.14']);
  t.deepEqual(dataOf(await udp(w.port, query('api.example.test', 'AAAA')), 'AAAA'), ['2001:2::f0f0:920e']);
  t.is(w.proxy.vipHost('240.240.146.14'), 'api.example.test');
  t.is(w.proxy.vipHost('2001:2::f0f0:920e'), 'api.example.test');
  t.deepEqual(w.proxy.nameFor('240.240.146.14', () => false), { host: 'api.example.test', allowed: false, source: 'vip', names: ['api.example.test'] });
  const https = await udp(w.port, query('api.example.test', 'UNKNOWN_65'));
  t.is(rcodeOf(https), RCODE.NOERROR);
  t.is(https.answers?.length, 0, 'HTTPS records would hand out other addresses: NODATA');
  t.deepEqual(dataOf(await udp(w.port, query('api.example.test', 'TXT'))), [[Buffer.from('hello')]], 'other types of an allowed name are forwarded');
  t.is(w.server.count('api.example.test'), 1);
});

test('without auto-allocation a host without addresses is forwarded', async (t) => {
  const w = await startWorld(t, { config: { autoAllocate: false } });
  t.deepEqual(dataOf(await udp(w.port, query('api.example.test', 'A')), 'A'), ['192.0.2.10']);
  t.is(w.proxy.vipHost('240.240.146.14'), undefined);
});

test('an answer bigger than the client takes over UDP is sent with TC; over TCP it comes whole; the upstream was retried over TCP', async (t) => {
  const w = await startWorld(t);
  const cut = await udp(w.port, query('big.wild.example.test', 'TXT'));
  t.true(cut.flag_tc);
  t.is(cut.answers?.length, 0);
  t.is(w.server.count('big.wild.example.test', 'udp'), 1);
  t.is(w.server.count('big.wild.example.test', 'tcp'), 1, 'the upstream truncated too, so the proxy asked it over TCP');
  const whole = await tcp(w.port, query('big.wild.example.test', 'TXT'));
  t.false(whole.flag_tc);
  t.is((dataOf(whole, 'TXT')[0] as Buffer[]).length, 3);
  t.is(w.server.asked.length, 2, 'the TCP retry of the client is a cache hit');
  const roomy = await udp(w.port, query('big.wild.example.test', 'TXT', { udpSize: 1232 }));
  t.false(roomy.flag_tc, 'a client with a 1232-byte EDNS buffer takes it over UDP');
  t.is(await metric(w.proxy.registry, 'egressd_dns_truncated_responses_total'), 1);
});

test('a CNAME chain the upstream leaves unfinished is followed; the addresses are credited to the asked name', async (t) => {
  const w = await startWorld(t);
  const reply = await udp(w.port, query('z.wild.example.test', 'A'));
  t.deepEqual(
    reply.answers?.map((r) => [r.name, r.type, (r as { data: unknown }).data]),
    [
      ['z.wild.example.test', 'CNAME', 'z.cdn.test'],
      ['z.cdn.test', 'CNAME', 'edge.cdn.test'],
      ['edge.cdn.test', 'A', '203.0.113.5'],
    ],
  );
  t.is(rcodeOf(reply), RCODE.NOERROR);
  t.is(w.server.count('edge.cdn.test'), 1);
  t.like(w.proxy.attribution.lookup('203.0.113.5'), { host: 'z.wild.example.test' });
  t.deepEqual(w.audit.items, [], 'the CNAME target is not judged: the asked name was');
  const again = await udp(w.port, query('y.wild.example.test', 'A'));
  t.deepEqual(dataOf(again, 'A'), ['203.0.113.5']);
  t.is(w.server.count('edge.cdn.test'), 1, 'the target answer came from the cache');
  t.deepEqual(w.proxy.attribution.lookup('203.0.113.5')?.names.map((n) => n.host), ['y.wild.example.test', 'z.wild.example.test'], 'one address, two asked names');
  w.advance(45_000);
  await udp(w.port, query('y.wild.example.test', 'A'));
  t.is(w.server.count('y.wild.example.test'), 2, 'the combined answer expired with its smallest TTL');
});

test('NXDOMAIN with an SOA is cached for the SOA minimum', async (t) => {
  const w = await startWorld(t);
  t.is(rcodeOf(await udp(w.port, query('missing.wild.example.test', 'A'))), RCODE.NXDOMAIN);
  t.is(rcodeOf(await udp(w.port, query('missing.wild.example.test', 'A'))), RCODE.NXDOMAIN);
  t.is(w.server.count('missing.wild.example.test'), 1);
  w.advance(60_000);
  await udp(w.port, query('missing.wild.example.test', 'A'));
  t.is(w.server.count('missing.wild.example.test'), 2);
});

test('concurrent identical misses make one upstream request', async (t) => {
  const w = await startWorld(t);
  const replies = await Promise.all(Array.from({ length: 20 }, () => udp(w.port, query('x.wild.example.test', 'A'))));
  for (const r of replies) t.deepEqual(dataOf(r, 'A'), ['192.0.2.11']);
  t.is(w.server.count('x.wild.example.test'), 1);
});

test('TCP: pipelined queries in one write are all answered, each with its id', async (t) => {
  const w = await startWorld(t);
  const packets = [query('x.wild.example.test', 'A', { id: 101 }), query('evil.test', 'A', { id: 102 }), query('fixed.example.test', 'AAAA', { id: 103 })];
  const replies = (await tcpExchange(w.proxy.addresses.tcp[0]!.port, packets)).map((r) => dnsPacket.decode(r));
  t.deepEqual(replies.map((r) => r.id).sort(), [101, 102, 103]);
  t.is(rcodeOf(replies.find((r) => r.id === 102)!), RCODE.NXDOMAIN);
});

const MALFORMED: [string, Buffer][] = [
  ['one byte', Buffer.from([0x12])],
  ['a header cut short', Buffer.from('abcd0100', 'hex')],
  ['random bytes', Buffer.from('5c1e9b0f77a3d2c4e81f00aa19bb73e2deadbeef0102030405', 'hex')],
  ['a compression loop', Buffer.from('abcd01000001000000000000c00c00010001', 'hex')],
  ['a response', dnsPacket.encode({ id: 9, type: 'response', questions: [{ name: 'a.test', type: 'A' }] })],
  ['a question that runs past the end', Buffer.from('abcd0100000100000000000003617069', 'hex')],
];

for (const [what, bytes] of MALFORMED) {
  test(`malformed over UDP (${what}): dropped or FORMERR, counted, and the proxy keeps answering`, async (t) => {
    const w = await startWorld(t);
    const good = query('fixed.example.test', 'A', { id: 4242 });
    const first = dnsPacket.decode(await udpExchange(w.port, [bytes, good]));
    const expectReply = bytes.length >= 2 && (bytes.length < 3 || (bytes[2]! & 0x80) === 0);
    if (expectReply) {
      t.is(first.id, bytes.readUInt16BE(0));
      t.is(rcodeOf(first), RCODE.FORMERR);
      t.deepEqual(dataOf(await udp(w.port, good), 'A'), ['192.0.2.20']);
    } else {
      t.is(first.id, 4242, 'nothing was sent back for the malformed packet');
    }
    t.is(await metric(w.proxy.registry, 'egressd_dns_malformed_packets_total', { transport: 'udp' }), 1);
  });
}

test('malformed over TCP: FORMERR for a framed message with an id, and the connection goes on', async (t) => {
  const w = await startWorld(t);
  const replies = await tcpExchange(w.proxy.addresses.tcp[0]!.port, [Buffer.from('beef0100', 'hex'), query('fixed.example.test', 'A', { id: 77 })]);
  t.is(dnsPacket.decode(replies[0]!).id, 0xbeef);
  t.is(rcodeOf(dnsPacket.decode(replies[0]!)), RCODE.FORMERR);
  t.deepEqual(dataOf(dnsPacket.decode(replies[1]!), 'A'), ['192.0.2.20']);
  t.is(await metric(w.proxy.registry, 'egressd_dns_malformed_packets_total', { transport: 'tcp' }), 1);
});

test('an upstream that never answers is asked once per attempt, then the client gets SERVFAIL', async (t) => {
  const w = await startWorld(t, { config: { upstreamTimeoutMs: 200 } });
  t.is(rcodeOf(await udp(w.port, query('slow.wild.example.test', 'A'))), RCODE.SERVFAIL);
  t.is(w.server.count('slow.wild.example.test'), 2, 'attempts: 2 rounds over the one server');
  t.is(await metric(w.proxy.registry, 'egressd_dns_upstream_failures_total'), 1);
  t.is(await metric(w.proxy.registry, 'egressd_dns_queries_total', { result: 'servfail' }), 1);
});

test('a dead upstream first in the list is skipped for the next', async (t) => {
  const first = await startWorld(t);
  const dead = { host: '127.0.0.1', port: first.server.port };
  await first.server.close();
  const w = await startWorld(t, {});
  const proxy = await startDnsProxy(dnsProxyConfig({ port: 0, bind: ['127.0.0.1'], upstreams: [dead, { host: w.server.host, port: w.server.port }], upstreamTimeoutMs: 200 }), {
    policy: () => undefined,
    identity: { namespace: 'default', labels: {} },
    audit: createAuditSink({ component: 'agent', stdout: false }),
    logger: createLogger('dns', { level: 'silent' }),
  });
  t.teardown(() => proxy.close());
  t.deepEqual(dataOf(await udp(proxy.addresses.udp[0]!.port, query('db.shop.svc.cluster.local', 'A')), 'A'), ['10.96.3.4']);
});

test('a port in use is EGRESSD_ERR_LISTEN; a missing resolv.conf is EGRESSD_ERR_RESOLV_CONF', async (t) => {
  const w = await startWorld(t);
  const runtime = { policy: () => undefined, identity: { namespace: 'default', labels: {} }, audit: createAuditSink({ component: 'agent', stdout: false }), logger: createLogger('dns', { level: 'silent' }) };
  const busy = await t.throwsAsync(startDnsProxy(dnsProxyConfig({ port: w.port, bind: ['127.0.0.1'], upstreams: [{ host: '127.0.0.1', port: 53 }] }), runtime), { instanceOf: EgressdError });
  t.is(busy?.code, 'EGRESSD_ERR_LISTEN');
  const noConf = await t.throwsAsync(startDnsProxy(dnsProxyConfig({ port: 0, bind: ['127.0.0.1'], resolvConf: '/nonexistent/resolv.conf' }), runtime), { instanceOf: EgressdError });
  t.is(noConf?.code, 'EGRESSD_ERR_RESOLV_CONF');
});

test('both families: the proxy answers on ::1 as well', async (t) => {
  const w = await startWorld(t, { config: { bind: ['127.0.0.1', '::1'] } });
  const v6 = w.proxy.addresses.udp.find((a) => a.family === 'IPv6');
  if (v6 === undefined) return t.pass('no IPv6 loopback here');
  t.is(v6.port, w.port);
  t.deepEqual(dataOf(await udp(v6.port, query('fixed.example.test', 'A'), '::1'), 'A'), ['192.0.2.20']);
  t.deepEqual(dataOf(await tcp(w.proxy.addresses.tcp[1]!.port, query('fixed.example.test', 'A')), 'A'), ['192.0.2.20']);
});
