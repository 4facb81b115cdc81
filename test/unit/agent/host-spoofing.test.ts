/**
 * A client cannot reach an unlisted IP by naming a listed host. On
 * loopback, through the original-destination seam: the "listed" server
 * listens on 127.0.0.1 and an "unlisted" one on 127.0.0.2, same port; every
 * connection is redirected from 127.0.0.2 with the SNI (or Host) of the
 * listed name, which --resolve points at 127.0.0.1 (or 127.0.0.2 where the
 * name really is there).
 */
import test, { type ExecutionContext } from 'ava';
import type { Destination } from '../../../src/agent/outbound.ts';
import { serviceEntry, startTestAgent, tcpExchange, tlsEchoServer, tlsExchange } from './_harness.ts';

const UNLISTED = '127.0.0.2';

async function servers(t: ExecutionContext) {
  const listed = await tlsEchoServer(t, { greeting: 'listed' });
  const unlisted = await tlsEchoServer(t, { host: UNLISTED, port: listed.port, greeting: 'unlisted' });
  return { port: listed.port, listed, unlisted };
}

/** An agent whose connections were all dialled to 127.0.0.2:port; api.example.test resolves to `nameAt`. */
function spoofedAgent(t: ExecutionContext, port: number, files: Record<string, string>, nameAt = '127.0.0.1') {
  return startTestAgent(t, {
    files,
    originalDestination: (): Destination => ({ address: UNLISTED, port }),
    config: { namespace: 'shop', resolve: [{ host: 'api.example.test', port, address: nameAt }] },
  });
}

test('DNS: a listed SNI dialled to another IP reaches the name\'s own address, never the IP the client dialled', async (t) => {
  const { port, unlisted } = await servers(t);
  const agent = await spoofedAgent(t, port, { 'api.yaml': serviceEntry('api', ['api.example.test'], [{ number: port, protocol: 'TLS' }]) });
  const { reply } = await tlsExchange({ port: agent.outboundPort, servername: 'api.example.test', message: 'ping' });
  t.is(reply, 'listed api.example.test http/1.1: ping');
  t.is(unlisted.received.length, 0);
  t.like(await agent.audit.find(() => true), { decision: 'allow', reason: 'allowed_by_rule', host_source: 'sni', port, dst: `127.0.0.1:${port}` });
});

test('STATIC: the endpoints, whatever the client dialled', async (t) => {
  const { port, unlisted } = await servers(t);
  const agent = await spoofedAgent(t, port, { 'api.yaml': serviceEntry('api', ['api.example.test'], [{ number: port, protocol: 'TLS' }], { resolution: 'STATIC', endpoints: ['127.0.0.1'] }) });
  const { reply } = await tlsExchange({ port: agent.outboundPort, servername: 'api.example.test', message: 'ping' });
  t.is(reply, 'listed api.example.test http/1.1: ping');
  t.is(unlisted.received.length, 0);
});

test('NONE: a dialled IP that is not an address of the name is refused as destination_mismatch', async (t) => {
  const { port, listed, unlisted } = await servers(t);
  const agent = await spoofedAgent(t, port, { 'api.yaml': serviceEntry('api', ['api.example.test'], [{ number: port, protocol: 'TLS' }], { resolution: 'NONE' }) });
  const err = await t.throwsAsync(tlsExchange({ port: agent.outboundPort, servername: 'api.example.test', message: 'ping' }));
  t.regex(err!.message, /access denied/i);
  t.is(unlisted.received.length + listed.received.length, 0);
  const record = await agent.audit.find(() => true);
  t.like(record, { decision: 'deny', reason: 'destination_mismatch', rule: 'ServiceEntry/default/api', host: 'api.example.test', dst: `${UNLISTED}:${port}`, route: null, bytes_sent: 0 });
  t.is(record.error, `${UNLISTED} is not an address of api.example.test (127.0.0.1)`);
});

test('NONE: a dialled IP that is the name\'s own address passes through to it', async (t) => {
  const { port } = await servers(t);
  const agent = await spoofedAgent(t, port, { 'api.yaml': serviceEntry('api', ['api.example.test'], [{ number: port, protocol: 'TLS' }], { resolution: 'NONE' }) }, UNLISTED);
  const { reply } = await tlsExchange({ port: agent.outboundPort, servername: 'api.example.test', message: 'ping' });
  t.is(reply, 'unlisted api.example.test http/1.1: ping');
  t.like(await agent.audit.find(() => true), { decision: 'allow', dst: `${UNLISTED}:${port}`, error: null });
});

test('NONE: a dialled IP within the ServiceEntry addresses passes through', async (t) => {
  const { port } = await servers(t);
  const agent = await spoofedAgent(t, port, {
    'api.yaml': serviceEntry('api', ['api.example.test'], [{ number: port, protocol: 'TLS' }], { resolution: 'NONE', addresses: ['127.0.0.0/30'] }),
  });
  const { reply } = await tlsExchange({ port: agent.outboundPort, servername: 'api.example.test', message: 'ping' });
  t.is(reply, 'unlisted api.example.test http/1.1: ping');
});

test('NONE with a wildcard host: the name the client gave is checked the same way', async (t) => {
  const { port, unlisted } = await servers(t);
  const agent = await spoofedAgent(t, port, { 'wild.yaml': serviceEntry('wild', ['*.example.test'], [{ number: port, protocol: 'TLS' }], { resolution: 'NONE' }) });
  await t.throwsAsync(tlsExchange({ port: agent.outboundPort, servername: 'api.example.test', message: 'ping' }), { message: /access denied/i });
  t.is(unlisted.received.length, 0);
  t.like(await agent.audit.find(() => true), { decision: 'deny', reason: 'destination_mismatch', rule: 'ServiceEntry/default/wild' });
});

test('NONE over plain HTTP: a 403 that says which address was expected', async (t) => {
  const { port } = await servers(t);
  const agent = await spoofedAgent(t, port, { 'api.yaml': serviceEntry('api', ['api.example.test'], [{ number: port, protocol: 'HTTP' }], { resolution: 'NONE' }) });
  const { reply } = await tcpExchange(agent.outboundPort, 'GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n', { end: false });
  const text = reply.toString();
  t.regex(text, /^HTTP\/1\.1 403 Forbidden\r\n/);
  t.true(text.includes('X-Egressd-Reason: destination_mismatch'));
  t.true(text.includes(`${UNLISTED} is not an address of api.example.test (127.0.0.1)`));
  t.true(text.includes('has resolution NONE'), 'the advice is about the address, not a new ServiceEntry');
  t.false(text.includes('kind: ServiceEntry'));
  t.like(await agent.audit.find(() => true), { decision: 'deny', reason: 'destination_mismatch', http: { method: 'GET', path: '/', status: 403 } });
});

test('NONE in REPORT mode: the mismatch is let through and marked would_deny', async (t) => {
  const { port } = await servers(t);
  const sidecar = 'apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: default\n  namespace: shop\n  labels: {egressd.io/mode: report}\nspec: {}\n';
  const agent = await spoofedAgent(t, port, {
    'api.yaml': serviceEntry('api', ['api.example.test'], [{ number: port, protocol: 'TLS' }], { resolution: 'NONE' }),
    'sidecar.yaml': sidecar,
  });
  const { reply } = await tlsExchange({ port: agent.outboundPort, servername: 'api.example.test', message: 'ping' });
  t.is(reply, 'unlisted api.example.test http/1.1: ping');
  t.like(await agent.audit.find(() => true), { decision: 'allow', reason: 'destination_mismatch', mode: 'REPORT', would_deny: true, dst: `${UNLISTED}:${port}` });
});
