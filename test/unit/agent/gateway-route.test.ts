/**
 * The agent's gateway route against real parts on loopback: a control plane
 * issuing the agent's and the gateway's certificates, the gateway (in-process,
 * or its binary when a replica is killed), an HTTPS server with its own CA.
 */
import test from 'ava';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import type { AuditRecord } from '../../../src/core/audit.ts';
import type { Seen } from '../gateway/_echo.ts';
import { startGatewayWorld, GATEWAY_ID, type GatewayWorld, type RunningGateway } from './_gateway-world.ts';
import { adminGet, eventually, proxyConnect, startTestAgent, type TestAgent } from './_harness.ts';
import { SPIFFE_ID } from './_identity.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function gatewayAgent(
  t: Parameters<typeof startTestAgent>[0],
  w: GatewayWorld,
  gateways: string[],
  extra: Parameters<typeof startTestAgent>[1] = {},
): Promise<TestAgent> {
  const agent = await startTestAgent(t, {
    files: w.agentFiles,
    ...extra,
    config: { namespace: 'shop', identity: w.ca.identity(), gateway: { addresses: gateways, identities: [GATEWAY_ID] }, ...extra.config },
  });
  await agent.handle.identity!.whenReady(15_000);
  return agent;
}

/** HTTPS GET over a socket (a CONNECT tunnel): the echo server's JSON, or the TLS error. */
async function httpsOver(socket: net.Socket, w: GatewayWorld, host: string, path: string): Promise<Seen> {
  const secure = tls.connect({ socket, servername: host, ca: w.internet.rootPem });
  await once(secure, 'secureConnect');
  secure.end(`GET ${path} HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`);
  const chunks: Buffer[] = [];
  for await (const chunk of secure) chunks.push(chunk as Buffer);
  const response = Buffer.concat(chunks).toString();
  return JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4)) as Seen;
}

/** A plain HTTP request through the explicit proxy (absolute URI). */
function proxyGet(agent: TestAgent, url: string): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const { host } = new URL(url);
    http
      .get({ host: '127.0.0.1', port: agent.proxyPort, path: url, headers: { host } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      })
      .on('error', reject);
  });
}

/** Raw plain HTTP to the transparent listener, as an application whose connection iptables redirected. */
async function transparentGet(agent: TestAgent, host: string, path: string): Promise<string> {
  const socket = net.connect({ host: '127.0.0.1', port: agent.outboundPort });
  await once(socket, 'connect');
  socket.end(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

test('(a) CONNECT through the agent goes through the gateway to the TLS server; both records name the route, the replica, the identity, one connection id', async (t) => {
  const w = await startGatewayWorld(t);
  const gw = await w.startGateway('gw-0');
  const agent = await gatewayAgent(t, w, [gw.address]);
  const tunnel = await proxyConnect(agent.proxyPort, 'api.example.test:443');
  t.is(tunnel.status, 200);
  const seen = await httpsOver(tunnel.socket, w, 'api.example.test', '/through-the-gateway');
  t.like(seen, { url: '/through-the-gateway', servername: 'api.example.test' });
  t.is(seen.headers['x-forwarded-client-cert'], undefined, 'passed through: the application TLS is not touched');

  const record = await agent.audit.find((r) => r.host === 'api.example.test');
  t.like(record, {
    decision: 'allow',
    reason: 'allowed_by_rule',
    route: 'gateway',
    replica: 'gw-0',
    identity: SPIFFE_ID,
    listener: 'proxy',
    protocol: 'tls',
    sni: 'api.example.test',
    dst: null,
    error: null,
  });
  t.regex(record.connection_id ?? '', UUID);
  t.true(record.bytes_sent > 0 && record.bytes_received > 0);
  const atGateway = await gw.audit.find((r) => r.connection_id === record.connection_id);
  t.like(atGateway, { component: 'gateway', decision: 'allow', identity: SPIFFE_ID, namespace: 'shop', replica: 'gw-0', protocol: 'tls', sni: 'api.example.test', dst: `127.0.0.1:${w.https.port}` });
  t.is(atGateway.bytes_sent, record.bytes_sent, 'the bytes the agent sent are the bytes the gateway delivered');
  const dump = JSON.parse((await adminGet(agent, '/config_dump')).body) as { gateway: { replicas: { address: string; state: string }[] } };
  t.like(dump.gateway.replicas[0], { address: gw.address, state: 'up' });
});

test('(b) plain HTTP to a host whose DestinationRule says SIMPLE: the gateway originates HTTPS and the server sees the agent\'s SPIFFE ID in XFCC', async (t) => {
  const w = await startGatewayWorld(t);
  const gw = await w.startGateway('gw-0');
  // The application dialled some address of the name; the gateway resolves the name itself.
  const agent = await gatewayAgent(t, w, [gw.address], { originalDestination: () => ({ address: '192.0.2.80', port: 80 }) });

  const transparent = await transparentGet(agent, 'api.example.test', '/transparent');
  t.regex(transparent, /^HTTP\/1\.1 200 /);
  const seen = JSON.parse(transparent.slice(transparent.indexOf('\r\n\r\n') + 4)) as Seen;
  t.like(seen, { url: '/transparent', servername: 'api.example.test' });
  t.regex(String(seen.headers['x-forwarded-client-cert']), new RegExp(`^By=${GATEWAY_ID};Hash=[0-9a-f]{64};URI=${SPIFFE_ID}$`));
  const record = await agent.audit.find((r) => r.listener === 'outbound');
  t.like(record, { decision: 'allow', route: 'gateway', replica: 'gw-0', protocol: 'http', host: 'api.example.test', dst: '192.0.2.80:80', http: { method: 'GET', path: '/transparent', status: 200 } });
  t.like(await gw.audit.find((r) => r.connection_id === record.connection_id), { protocol: 'http', http: { status: 200 }, identity: SPIFFE_ID });

  const proxied = await proxyGet(agent, 'http://api.example.test/explicit');
  t.is(proxied.status, 200);
  t.regex(String((JSON.parse(proxied.body) as Seen).headers['x-forwarded-client-cert']), new RegExp(`URI=${SPIFFE_ID}$`));
  t.like(await agent.audit.find((r) => r.listener === 'proxy'), { decision: 'allow', route: 'gateway', http: { status: 200 } });
});

test('(c) what the agent allows and the gateway does not: the application gets a refusal, the agent\'s record the gateway\'s reason', async (t) => {
  const w = await startGatewayWorld(t);
  const gw = await w.startGateway('gw-0');
  const agent = await gatewayAgent(t, w, [gw.address]);

  // TLS: refused by the gateway before any byte leaves, as an access_denied alert to the application.
  const tunnel = await proxyConnect(agent.proxyPort, 'restricted.example.test:443');
  t.is(tunnel.status, 200, 'the agent itself allows it');
  const error = await httpsOver(tunnel.socket, w, 'restricted.example.test', '/').then(
    () => undefined,
    (err: Error) => err,
  );
  t.regex(error?.message ?? '', /access denied/i);
  const tlsRecord = await agent.audit.find((r) => r.host === 'restricted.example.test' && r.protocol === 'tls');
  t.like(tlsRecord, { decision: 'deny', reason: 'not_exported', rule: 'ServiceEntry/egress/restricted', route: 'gateway', replica: 'gw-0', bytes_sent: 0 });
  t.regex(tlsRecord.error ?? '', /refused by the egress gateway gw-0 \(403 not_exported\)/);
  t.like(await gw.audit.find((r) => r.connection_id === tlsRecord.connection_id), { decision: 'deny', reason: 'not_exported', namespace: 'shop' });

  // HTTP: the gateway answers the request itself (404, Istio's blackhole), which the application reads.
  const denied = await proxyGet(agent, 'http://restricted.example.test/secret');
  t.is(denied.status, 404);
  const httpRecord = await agent.audit.find((r) => r.host === 'restricted.example.test' && r.protocol === 'http');
  t.like(httpRecord, { decision: 'deny', reason: 'not_exported', route: 'gateway', replica: 'gw-0', http: { method: 'GET', path: '/secret', status: 404 } });
  t.is(w.https.seen.length, 0, 'nothing reached the server');
  const metrics = (await adminGet(agent, '/stats/prometheus')).body;
  t.regex(metrics, /egressd_agent_connections_total\{listener="proxy",decision="deny",reason="not_exported"\} 2/);
});

test('(d) two replicas behind one name, one killed: the next connections go to the other, and the failure is logged and counted', async (t) => {
  const w = await startGatewayWorld(t);
  const first = await w.spawnGateway('gw-0', { host: '127.0.0.1', port: 0 });
  const port = Number(first.address.split(':')[1]);
  const second = await w.spawnGateway('gw-1', { host: '127.0.0.2', port });
  const name = 'egress-gateway.egressd.test';
  const agent = await gatewayAgent(t, w, [`${name}:${port}`], {
    config: { resolve: [{ host: name, port, address: '127.0.0.1' }, { host: name, port, address: '127.0.0.2' }] },
  });
  const fetchVia = async (): Promise<AuditRecord> => {
    const before = agent.audit.items.length;
    const res = await proxyGet(agent, 'http://api.example.test/replica');
    t.is(res.status, 200);
    return agent.audit.find((r) => agent.audit.items.indexOf(r) >= before, 'the next record');
  };
  const used = new Set<string>();
  for (let i = 0; i < 4; i++) used.add((await fetchVia()).replica ?? '');
  t.deepEqual([...used].sort(), ['gw-0', 'gw-1'], 'the name stands for both replicas, used in turn');

  const killed: RunningGateway = first;
  killed.child!.kill('SIGKILL');
  await once(killed.child!, 'exit');
  for (let i = 0; i < 4; i++) {
    const record = await fetchVia();
    t.like(record, { decision: 'allow', route: 'gateway', replica: 'gw-1', error: null });
  }
  const down = await agent.logs.find((l) => l.msg === 'egress gateway replica down; new connections go to the others', 'the replica-down log');
  t.is(down.replica, `127.0.0.1:${port}`);
  const metrics = (await adminGet(agent, '/stats/prometheus')).body;
  t.regex(metrics, new RegExp(`egressd_agent_gateway_replica_failures_total\\{replica="127\\.0\\.0\\.1:${port}"\\} [1-9]`));
  // A spawned replica's records come through its stdout, in batches (up to 50 ms later): waited for, not counted at once.
  t.like(await second.audit.find((r) => r.replica === 'gw-1'), { replica: 'gw-1', identity: SPIFFE_ID });
});

test('a replica that refuses the connection: the tunnel moves on to the next, and the record names the replica it left and why', async (t) => {
  const w = await startGatewayWorld(t);
  const gw = await w.spawnGateway('gw-0', { host: '127.0.0.1', port: 0 });
  const probe = net.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const dead = `127.0.0.1:${(probe.address() as net.AddressInfo).port}`;
  await new Promise((resolve) => probe.close(resolve));
  const agent = await gatewayAgent(t, w, [dead, gw.address]);
  // Replicas are dialled on first use, in the order given: the first tunnel meets the dead one first.
  t.is((await proxyGet(agent, 'http://api.example.test/failover')).status, 200);
  const [record] = await agent.audit.count(1);
  t.like(record, { decision: 'allow', route: 'gateway', replica: 'gw-0', error: null });
  t.is(record!.failover?.length, 1);
  t.regex(record!.failover![0]!, new RegExp(`^${dead.replace(/\./g, '\\.')}: .*ECONNREFUSED`));
});

test('without a gateway the route is direct; a DestinationRule asking for origination gets one warning that it needs the gateway', async (t) => {
  const w = await startGatewayWorld(t);
  const agent = await startTestAgent(t, { files: w.agentFiles, config: { namespace: 'shop' } });
  // Direct, the agent sends the client's plain HTTP as it is to the rule's endpoint: the HTTPS echo server refuses it as bad TLS.
  for (let i = 0; i < 2; i++) await proxyGet(agent, 'http://api.example.test/plain');
  const records = await agent.audit.count(2);
  t.true(records.every((r) => r.route === 'direct' && r.replica === null && r.identity === null));
  const warnings = agent.logs.items.filter((l) => String(l.msg).startsWith('TLS origination needs the egress gateway'));
  t.is(warnings.length, 1);
  t.like(warnings[0], { host: 'api.example.test', port: 80, rule: 'DestinationRule/egress/api-tls' });
});

test('a gateway that cannot be reached: the connection fails like an unreachable destination (502), and no replica is trusted without a certificate check', async (t) => {
  const w = await startGatewayWorld(t);
  const dead = net.createServer();
  await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
  const port = (dead.address() as net.AddressInfo).port;
  await new Promise((resolve) => dead.close(resolve));
  const agent = await gatewayAgent(t, w, [`127.0.0.1:${port}`]);
  const res = await proxyGet(agent, 'http://api.example.test/');
  t.is(res.status, 502);
  const record = await agent.audit.find(() => true);
  t.like(record, { decision: 'allow', route: 'gateway', http: { status: 502 } });
  t.regex(record.error ?? '', /no gateway replica could open the tunnel/);

  // A gateway whose certificate is not the expected identity is refused at the handshake.
  const gw = await w.startGateway('gw-0');
  const wrong = await startTestAgent(t, {
    files: w.agentFiles,
    config: { namespace: 'shop', identity: w.ca.identity(), gateway: { addresses: [gw.address], identities: [`spiffe://example.org/ns/egressd/sa/someone-else`] } },
  });
  await wrong.handle.identity!.whenReady(15_000);
  t.is((await proxyGet(wrong, 'http://api.example.test/')).status, 502);
  t.regex((await wrong.audit.find(() => true)).error ?? '', /expected spiffe:\/\/example\.org\/ns\/egressd\/sa\/someone-else/);
  t.is(gw.audit.items.length, 0);
});

test('a replica that stops gracefully (GOAWAY, then a closed port): new connections go to the other', async (t) => {
  const w = await startGatewayWorld(t);
  const gw0 = await w.startGateway('gw-0');
  const gw1 = await w.startGateway('gw-1');
  const agent = await gatewayAgent(t, w, [gw0.address, gw1.address]);
  for (let i = 0; i < 2; i++) t.is((await proxyGet(agent, 'http://api.example.test/warm')).status, 200);
  await gw0.gateway!.close(1000);
  for (let i = 0; i < 3; i++) t.is((await proxyGet(agent, 'http://api.example.test/after')).status, 200);
  const after = await eventually(() => {
    const records = agent.audit.items.filter((r) => r.http?.path === '/after');
    return records.length === 3 ? records : undefined;
  }, 'three records');
  t.deepEqual(
    after.map((r) => r.replica),
    ['gw-1', 'gw-1', 'gw-1'],
  );
});
