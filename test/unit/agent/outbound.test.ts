/**
 * The transparent listener on loopback. iptables is not involved: the
 * original-destination stage is given as a function (the seam the pipeline
 * has for it); every other stage is the real one, against real servers.
 * SO_ORIGINAL_DST itself is covered by the end-to-end tests.
 */
import test, { type ExecutionContext } from 'ava';
import net from 'node:net';
import { EgressdError } from '../../../src/core/errors.ts';
import type { Destination } from '../../../src/agent/outbound.ts';
import { adminGet, echoServer, httpServer, serviceEntry, startTestAgent, tcpExchange, tlsEchoServer, tlsExchange } from './_harness.ts';

/**
 * An agent whose every outbound connection was "redirected" from `dst`.
 * api.example.test (resolution DNS: the agent dials the name) resolves to
 * 127.0.0.1 on the server's port, so nothing asks a DNS server.
 */
function transparentAgent(t: ExecutionContext, dst: () => Destination, files: Record<string, string>, serverPort = 0) {
  return startTestAgent(t, { files, originalDestination: dst, config: { namespace: 'shop', resolve: [{ host: 'api.example.test', port: serverPort, address: '127.0.0.1' }] } });
}

const to = (port: number) => (): Destination => ({ address: '127.0.0.1', port });

test('TLS to an allowed SNI is spliced to the original destination and audited with SNI and ALPN', async (t) => {
  const server = await tlsEchoServer(t);
  const agent = await transparentAgent(t, to(server.port), { 'api.yaml': serviceEntry('api', ['api.example.test'], [{ number: server.port, protocol: 'TLS' }]) }, server.port);
  const { reply, alpn } = await tlsExchange({ port: agent.outboundPort, servername: 'api.example.test', message: 'ping' });
  t.is(reply, 'hello api.example.test http/1.1: ping');
  t.is(alpn, 'http/1.1');
  const record = await agent.audit.find(() => true);
  t.like(record, {
    component: 'agent',
    listener: 'outbound',
    decision: 'allow',
    reason: 'allowed_by_rule',
    rule: 'ServiceEntry/default/api',
    mode: 'REGISTRY_ONLY',
    would_deny: false,
    host: 'api.example.test',
    host_source: 'sni',
    sni: 'api.example.test',
    alpn: ['http/1.1'],
    port: server.port,
    dst: `127.0.0.1:${server.port}`,
    protocol: 'tls',
    http: null,
    route: 'direct',
    namespace: 'shop',
    error: null,
  });
  t.regex(record.src ?? '', /^127\.0\.0\.1:\d+$/);
  t.true(record.bytes_sent > 0 && record.bytes_received > 0);
  t.true(record.duration_ms >= 0);
  t.false(Number.isNaN(Date.parse(record.time)));
});

test('TLS to a name no ServiceEntry lists gets an access_denied alert; nothing reaches the server', async (t) => {
  const server = await tlsEchoServer(t);
  const agent = await transparentAgent(t, to(server.port), { 'api.yaml': serviceEntry('api', ['api.example.test'], [{ number: server.port, protocol: 'TLS' }]) }, server.port);
  const err = await t.throwsAsync(tlsExchange({ port: agent.outboundPort, servername: 'denied.example.test', message: 'ping' }));
  t.regex(err!.message, /access denied/i);
  const record = await agent.audit.find(() => true);
  t.like(record, { decision: 'deny', reason: 'no_matching_rule', host: 'denied.example.test', host_source: 'sni', protocol: 'tls', route: null, bytes_sent: 0 });
  t.is(server.received.length, 0);
});

test('plain HTTP is decided on its Host header and relayed; the record has method, path and status', async (t) => {
  const server = await httpServer(t);
  const agent = await transparentAgent(t, to(server.port), { 'api.yaml': serviceEntry('api', ['api.example.test'], [{ number: server.port, protocol: 'HTTP' }]) }, server.port);
  const request = 'GET /v1/items?key=secret HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n';
  const { reply } = await tcpExchange(agent.outboundPort, request, { end: false });
  t.regex(reply.toString(), /^HTTP\/1\.1 200 OK/);
  t.true(reply.toString().includes('"url":"/v1/items?key=secret"'));
  const record = await agent.audit.find(() => true);
  t.like(record, {
    decision: 'allow',
    host: 'api.example.test',
    host_source: 'http',
    protocol: 'http',
    http: { method: 'GET', path: '/v1/items', status: 200 },
    bytes_sent: request.length,
    bytes_received: reply.length,
  });
});

test('plain HTTP to a denied host gets a 403 that says how to allow it', async (t) => {
  const server = await httpServer(t);
  const agent = await transparentAgent(t, to(server.port), {});
  const { reply } = await tcpExchange(agent.outboundPort, 'GET / HTTP/1.1\r\nHost: denied.example.test\r\n\r\n', { end: false });
  const text = reply.toString();
  t.regex(text, /^HTTP\/1\.1 403 Forbidden\r\n/);
  t.true(text.includes('X-Egressd-Reason: no_matching_rule'));
  t.true(text.includes(`egressctl check --config ${agent.configDir} --namespace shop denied.example.test:${server.port}`));
  const record = await agent.audit.find(() => true);
  t.like(record, { decision: 'deny', reason: 'no_matching_rule', host: 'denied.example.test', http: { method: 'GET', path: '/', status: 403 } });
});

test('an absolute-form target naming another host than the Host header is denied', async (t) => {
  const server = await httpServer(t);
  const agent = await transparentAgent(t, to(server.port), { 'api.yaml': serviceEntry('api', ['api.example.test'], [{ number: server.port, protocol: 'HTTP' }]) }, server.port);
  const { reply } = await tcpExchange(agent.outboundPort, 'GET http://denied.example.test/ HTTP/1.1\r\nHost: api.example.test\r\n\r\n', { end: false });
  t.regex(reply.toString(), /^HTTP\/1\.1 403/);
  const record = await agent.audit.find(() => true);
  t.like(record, { decision: 'deny', reason: 'host_mismatch', host: 'denied.example.test' });
});

test('a malformed ClientHello is refused with a decode_error alert, counted, audited, and the agent keeps serving', async (t) => {
  const server = await tlsEchoServer(t);
  const agent = await transparentAgent(t, to(server.port), { 'api.yaml': serviceEntry('api', ['api.example.test'], [{ number: server.port, protocol: 'TLS' }]) }, server.port);
  // A handshake record whose message is a ServerHello (type 2): TLS on the wire, but no ClientHello.
  const { reply } = await tcpExchange(agent.outboundPort, Buffer.from([22, 3, 1, 0, 4, 2, 0, 0, 0]), { end: false });
  t.deepEqual([...reply], [21, 3, 3, 0, 2, 2, 50]);
  const record = await agent.audit.find(() => true);
  t.like(record, { decision: 'deny', reason: 'malformed_client_hello', protocol: 'tls', host: '127.0.0.1', host_source: 'ip', bytes_sent: 0 });
  t.regex(record.error ?? '', /not ClientHello/);
  const metrics = await adminGet(agent, '/stats/prometheus');
  t.regex(metrics.body, /egressd_agent_malformed_client_hellos_total\{listener="outbound"\} 1/);
  t.regex(metrics.body, /egressd_agent_connections_total\{listener="outbound",decision="deny",reason="malformed_client_hello"\} 1/);

  const { reply: ok } = await tlsExchange({ port: agent.outboundPort, servername: 'api.example.test', message: 'still there?' });
  t.is(ok, 'hello api.example.test http/1.1: still there?');
});

test('a server that speaks first: after the peek timeout the destination IP decides, bytes flow both ways', async (t) => {
  const server = await echoServer(t, '220 db ready\r\n');
  const agent = await transparentAgent(t, to(server.port), {
    'db.yaml': serviceEntry('db', ['db.internal'], [{ number: server.port, protocol: 'TCP' }], { addresses: ['127.0.0.1/32'] }),
  });
  const socket = net.connect({ host: '127.0.0.1', port: agent.outboundPort, allowHalfOpen: true });
  const banner = await new Promise<string>((resolve) => socket.once('data', (c: Buffer) => resolve(c.toString())));
  t.is(banner, '220 db ready\r\n');
  socket.end('QUIT');
  const rest = await new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    socket.on('close', () => resolve(text));
  });
  t.is(rest, 'QUIT');
  const record = await agent.audit.find(() => true);
  t.like(record, { decision: 'allow', rule: 'ServiceEntry/default/db', host: '127.0.0.1', host_source: 'ip', protocol: 'tcp', sni: null, bytes_sent: 4, bytes_received: 18 });
});

test('bytes are counted exactly both ways, and a client half-close reaches the server', async (t) => {
  const server = await echoServer(t);
  const agent = await transparentAgent(t, to(server.port), {
    'db.yaml': serviceEntry('db', ['db.internal'], [{ number: server.port, protocol: 'TCP' }], { addresses: ['127.0.0.1/32'] }),
  });
  const payload = Buffer.alloc(3 * 1024 * 1024, 'x');
  const { reply, error } = await tcpExchange(agent.outboundPort, payload);
  t.is(error, undefined);
  t.is(reply.length, payload.length, 'the echo came back whole, so the server saw our FIN and ended');
  const record = await agent.audit.find(() => true);
  t.like(record, { decision: 'allow', protocol: 'tcp', bytes_sent: payload.length, bytes_received: payload.length, error: null });
  t.is(agent.audit.items.length, 1);
});

test('an allowed destination that refuses the connection: the client is reset and the record has the error', async (t) => {
  // Port 1 (tcpmux) has no listener on any machine we run on; a port freed by a test could be taken again meanwhile.
  const port = 1;
  const agent = await transparentAgent(t, to(port), { 'db.yaml': serviceEntry('db', ['db.internal'], [{ number: port, protocol: 'TCP' }], { addresses: ['127.0.0.1/32'] }) });
  const { error } = await tcpExchange(agent.outboundPort, 'hello', { end: false });
  t.is(error?.code, 'ECONNRESET');
  const record = await agent.audit.find(() => true);
  t.like(record, { decision: 'allow', route: 'direct', bytes_sent: 0 });
  t.regex(record.error ?? '', /ECONNREFUSED/);
});

test('a connection whose original destination cannot be read is reset and audited', async (t) => {
  const agent = await transparentAgent(
    t,
    () => {
      throw new EgressdError('EGRESSD_ERR_ORIGINAL_DST', 'getsockopt(SO_ORIGINAL_DST) failed with ENOENT');
    },
    {},
  );
  const { error } = await tcpExchange(agent.outboundPort, 'hello', { end: false });
  t.is(error?.code, 'ECONNRESET');
  const record = await agent.audit.find(() => true);
  t.like(record, { decision: 'deny', reason: 'no_original_destination', dst: null });
  t.regex(record.error ?? '', /ENOENT/);
});

test('a connection redirected to the agent itself is refused as a loop', async (t) => {
  let self = 0;
  const agent = await transparentAgent(t, () => ({ address: '127.0.0.1', port: self }), {});
  self = agent.outboundPort;
  const { error } = await tcpExchange(agent.outboundPort, 'hello', { end: false });
  t.is(error?.code, 'ECONNRESET');
  const record = await agent.audit.find(() => true);
  t.like(record, { decision: 'deny', reason: 'loop', dst: `127.0.0.1:${self}` });
  t.is(agent.audit.items.length, 1, 'no second connection was made');
});

test('the transparent listener binds every address on one port, IPv6 included', async (t) => {
  const server = await tlsEchoServer(t);
  const agent = await startTestAgent(t, {
    files: { 'api.yaml': serviceEntry('api', ['api.example.test'], [{ number: server.port, protocol: 'TLS' }]) },
    originalDestination: to(server.port),
    config: { outboundBind: ['127.0.0.1', '::1'], resolve: [{ host: 'api.example.test', port: server.port, address: '127.0.0.1' }] },
  });
  t.deepEqual(
    agent.handle.addresses.outbound.map((a) => [a.address, a.port]),
    [
      ['127.0.0.1', agent.outboundPort],
      ['::1', agent.outboundPort],
    ],
  );
  const { reply } = await tlsExchange({ host: '::1', port: agent.outboundPort, servername: 'api.example.test', message: 'v6' });
  t.is(reply, 'hello api.example.test http/1.1: v6');
  const record = await agent.audit.find(() => true);
  t.regex(record.src ?? '', /^\[::1\]:\d+$/);
});

test('a spliced connection idle for the idle timeout is closed on both sides, with the reason in the record', async (t) => {
  const server = await echoServer(t, 'hi\r\n');
  const agent = await startTestAgent(t, {
    files: { 'db.yaml': serviceEntry('db', ['db.internal'], [{ number: server.port, protocol: 'TCP' }], { addresses: ['127.0.0.1/32'] }) },
    originalDestination: to(server.port),
    config: { idleTimeoutMs: 300 },
  });
  const { reply, error } = await tcpExchange(agent.outboundPort, '', { end: false });
  t.is(reply.toString(), 'hi\r\n');
  t.is(error?.code, 'ECONNRESET', 'an idle cut is a reset, not a clean end');
  const record = await agent.audit.find(() => true);
  t.like(record, { decision: 'allow', bytes_received: 4, error: 'idle for 300 ms' });
});
