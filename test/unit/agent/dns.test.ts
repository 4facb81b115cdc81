/**
 * The agent with its DNS proxy, in-process on loopback: a real DNS server
 * (the DNS tests' own) is the pod's nameserver, named by a temporary
 * resolv.conf; applications ask the agent's DNS port, then connect through
 * the transparent listener with the original destination given by the test
 * (the seam outbound.ts has for SO_ORIGINAL_DST). What is checked is the
 * answers, where connections arrive, and the parsed audit records.
 */
import test, { type ExecutionContext } from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Answer } from 'dns-packet';
import { agentConfig } from '../../../src/agent/agent-config.ts';
import type { Destination } from '../../../src/agent/outbound.ts';
import { dnsProxyConfig } from '../../../src/dns/index.ts';
import { dataOf, query, rcodeOf, udp } from '../dns/_dns-client.ts';
import { startDnsServer, type DnsServer, type Zone } from '../dns/_dns-server.ts';
import { adminGet, echoServer, httpServer, serviceEntry, startTestAgent, tcpExchange, tempDir, type TestAgent } from './_harness.ts';

const a = (name: string, data: string): Answer => ({ name, type: 'A', ttl: 300, class: 'IN', data });

/**
 * The pod's nameserver on port 53 (resolv.conf has no port) of a loopback
 * address of its own, so that tests running side by side do not meet.
 */
async function nameserver(t: ExecutionContext, zone: Zone): Promise<DnsServer> {
  for (let attempt = 1; ; attempt++) {
    const address = `127.${100 + Math.floor(Math.random() * 100)}.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 254)}`;
    try {
      const server = await startDnsServer(zone, address, 53);
      t.teardown(() => server.close());
      return server;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === 5) throw err;
    }
  }
}

interface World {
  agent: TestAgent;
  upstream: DnsServer;
  dnsPort: number;
  /** Where the next connection to the outbound listener "was going". */
  dst: Destination;
  /** One raw TCP exchange through the outbound listener, as if dialled to `to`. */
  connect(to: Destination, data: string, end?: boolean): Promise<string>;
}

async function world(t: ExecutionContext, files: Record<string, string>, zone: Zone, extra: { resolve?: { host: string; address: string }[] } = {}): Promise<World> {
  const upstream = await nameserver(t, zone);
  const resolvConf = join(tempDir(t), 'resolv.conf');
  writeFileSync(resolvConf, `nameserver ${upstream.host}\nsearch default.svc.cluster.local\noptions ndots:5\n`);
  const w = { dst: { address: '127.0.0.1', port: 1 } } as World;
  w.upstream = upstream;
  w.agent = await startTestAgent(t, {
    files,
    originalDestination: () => w.dst,
    config: { dns: dnsProxyConfig({ port: 0, bind: ['127.0.0.1'], resolvConf, autoAllocate: true }), resolve: extra.resolve ?? [] },
  });
  w.dnsPort = w.agent.handle.dns!.addresses.udp[0]!.port;
  w.connect = async (to, data, end = true) => {
    w.dst = to;
    return (await tcpExchange(w.agent.outboundPort, data, { end })).reply.toString();
  };
  return w;
}

test('the agent answers DNS on its own port, forwarding to the resolv.conf nameserver; ready and listed once up', async (t) => {
  const w = await world(t, { 'db.yaml': serviceEntry('db', ['db.example.test'], [{ number: 5432, protocol: 'TCP' }], { resolution: 'NONE' }) }, { records: [a('db.example.test', '192.0.2.44')] });
  t.deepEqual(dataOf(await udp(w.dnsPort, query('db.example.test', 'A'))), ['192.0.2.44']);
  t.is(w.upstream.count('db.example.test'), 1);
  t.is((await adminGet(w.agent, '/healthz/ready')).status, 200);
  const dump = JSON.parse((await adminGet(w.agent, '/config_dump')).body) as { listeners: { dns: { address: string; port: number }[] } };
  t.like(dump.listeners.dns[0], { address: '127.0.0.1', port: w.dnsPort });
});

test('raw TCP to an address DNS gave is decided and audited on the name (host_source dns); before the answer, on the IP alone', async (t) => {
  const server = await echoServer(t, '220 db ready\r\n');
  const w = await world(
    t,
    { 'db.yaml': serviceEntry('db', ['db.example.test'], [{ number: server.port, protocol: 'TCP' }], { resolution: 'NONE' }) },
    { records: [a('db.example.test', '127.0.0.1')] },
  );
  const to = { address: '127.0.0.1', port: server.port };
  t.is(await w.connect(to, 'ping'), '', 'nothing named 127.0.0.1 yet: refused');
  t.like(await w.agent.audit.find((r) => r.listener === 'outbound'), { decision: 'deny', reason: 'no_matching_rule', host: '127.0.0.1', host_source: 'ip' });

  t.deepEqual(dataOf(await udp(w.dnsPort, query('db.example.test', 'A'))), ['127.0.0.1']);
  t.is(await w.connect(to, 'ping'), '220 db ready\r\nping', 'the server spoke first, then echoed');
  const records = await w.agent.audit.count(2);
  t.like(records[1], {
    listener: 'outbound',
    decision: 'allow',
    reason: 'allowed_by_rule',
    rule: 'ServiceEntry/default/db',
    host: 'db.example.test',
    host_source: 'dns',
    sni: null,
    protocol: 'tcp',
    dst: `127.0.0.1:${server.port}`,
    route: 'direct',
  });
});

test('several names for one address: the connection is judged on the one the allowlist refuses', async (t) => {
  const server = await echoServer(t);
  const w = await world(
    t,
    { 'db.yaml': serviceEntry('db', ['db.example.test'], [{ number: server.port, protocol: 'TCP' }], { resolution: 'NONE' }) },
    { records: [a('db.example.test', '127.0.0.1'), a('db.default.svc.cluster.local', '127.0.0.1')] },
  );
  t.deepEqual(dataOf(await udp(w.dnsPort, query('db.example.test', 'A'))), ['127.0.0.1']);
  t.deepEqual(dataOf(await udp(w.dnsPort, query('db.default.svc.cluster.local', 'A'))), ['127.0.0.1'], 'cluster names are forwarded unjudged');
  t.is(await w.connect({ address: '127.0.0.1', port: server.port }, 'ping'), '');
  t.like(await w.agent.audit.find((r) => r.listener === 'outbound'), {
    decision: 'deny',
    reason: 'no_matching_rule',
    host: 'db.default.svc.cluster.local',
    host_source: 'dns',
  });
});

test('a VIP: the name resolves to it, a connection to it reaches the server by name; an SNI or Host must agree with its host', async (t) => {
  const tcp = await echoServer(t);
  const web = await httpServer(t);
  const w = await world(
    t,
    { 'vip.yaml': serviceEntry('vip', ['vip.example.test'], [{ number: tcp.port, protocol: 'TCP' }, { number: web.port, protocol: 'HTTP' }], { resolution: 'DNS' }) },
    { records: [] },
    { resolve: [{ host: 'vip.example.test', address: '127.0.0.1' }] },
  );
  const [vip] = dataOf(await udp(w.dnsPort, query('vip.example.test', 'A'))) as string[];
  t.regex(vip ?? '', /^240\.240\.\d+\.\d+$/);
  t.is(w.agent.handle.dns!.vipHost(vip!), 'vip.example.test');
  t.is(w.upstream.count('vip.example.test'), 0, 'answered from the allowlist');

  t.is(await w.connect({ address: vip!, port: tcp.port }, 'through the VIP'), 'through the VIP');
  t.like(await w.agent.audit.find((r) => r.listener === 'outbound'), {
    decision: 'allow',
    host: 'vip.example.test',
    host_source: 'dns',
    protocol: 'tcp',
    dst: `127.0.0.1:${tcp.port}`,
  });

  const ok = await w.connect({ address: vip!, port: web.port }, 'GET /x HTTP/1.1\r\nHost: vip.example.test\r\nConnection: close\r\n\r\n', false);
  t.regex(ok, /^HTTP\/1\.1 200 /);
  const denied = await w.connect({ address: vip!, port: web.port }, 'GET /x HTTP/1.1\r\nHost: other.example.test\r\nConnection: close\r\n\r\n', false);
  t.regex(denied, /^HTTP\/1\.1 403 /);
  const records = await w.agent.audit.count(3);
  t.like(records.find((r) => r.http?.status === 200), { decision: 'allow', host: 'vip.example.test', dst: `127.0.0.1:${web.port}` });
  t.like(records.find((r) => r.http?.status === 403), { decision: 'deny', reason: 'host_mismatch', host: 'vip.example.test', route: null });
});

test('a denied name: NXDOMAIN, an audit record from the DNS listener, and the upstream never asked', async (t) => {
  const w = await world(t, {}, { records: [a('evil.example.test', '192.0.2.66')] });
  const answer = await udp(w.dnsPort, query('evil.example.test', 'A'));
  t.is(rcodeOf(answer), 3);
  t.like(await w.agent.audit.find((r) => r.listener === 'dns'), {
    component: 'agent',
    decision: 'deny',
    reason: 'no_matching_rule',
    host: 'evil.example.test',
    host_source: 'dns',
    protocol: 'dns',
    namespace: 'default',
  });
  t.is(w.upstream.count('evil.example.test'), 0);
});

test('agentConfig refuses a DNS listener off loopback, with the other problems', (t) => {
  const err = t.throws(() => agentConfig({ outboundPort: -1, dns: { ...dnsProxyConfig({}), bind: ['0.0.0.0'] } }));
  t.regex(err!.message, /outboundPort: -1 .*dns: bind address "0\.0\.0\.0" is not a loopback address/);
});
