/**
 * --connect-to, like curl's: the parser, the rewrite, and real connections
 * through both listeners to loopback servers standing in for remote names.
 */
import test from 'ava';
import http from 'node:http';
import net from 'node:net';
import { applyConnectTo, parseConnectTo, type ConnectToEntry } from '../../../src/agent/connect-to.ts';
import type { Destination } from '../../../src/agent/outbound.ts';
import { httpServer, proxyConnect, serviceEntry, startTestAgent, tlsEchoServer, tlsExchange } from './_harness.ts';

const PARSED: [string, ConnectToEntry][] = [
  ['api.example.test:443:127.0.0.1:8443', { from: { host: 'api.example.test', port: 443 }, to: { host: '127.0.0.1', port: 8443 } }],
  ['API.Example.Test.:443:backend.local:', { from: { host: 'api.example.test', port: 443 }, to: { host: 'backend.local' } }],
  ['::127.0.0.1:9000', { from: {}, to: { host: '127.0.0.1', port: 9000 } }],
  ['api.example.test:::8443', { from: { host: 'api.example.test' }, to: { port: 8443 } }],
  ['[2001:db8::1]:443:[::1]:8443', { from: { host: '2001:db8::1', port: 443 }, to: { host: '::1', port: 8443 } }],
];
for (const [text, want] of PARSED) {
  test(`--connect-to "${text}" parses like curl's`, (t) => {
    t.deepEqual(parseConnectTo(text), want);
  });
}

for (const bad of ['api.example.test:443:127.0.0.1', 'api.example.test:443:127.0.0.1:99999', '::1:443:127.0.0.1:80', '[not-v6]:443::80', '*.example.test:443::80', 'a:0::1']) {
  test(`--connect-to "${bad}" is refused with the expected form`, (t) => {
    t.throws(() => parseConnectTo(bad), { code: 'EGRESSD_ERR_USAGE', message: /expected HOST1:PORT1:HOST2:PORT2/ } as never);
  });
}

test('the first entry naming the endpoint or the requested destination applies; empty parts keep the original', (t) => {
  const entries = ['other.test:443:127.0.0.5:1', 'api.example.test:443::8443', '10.0.0.1::127.0.0.2:', ':80:127.0.0.3:'].map(parseConnectTo);
  const requested = { host: 'api.example.test', port: 443 };
  t.deepEqual(applyConnectTo(entries, { host: 'api.example.test', port: 443 }, requested), { host: 'api.example.test', port: 8443 });
  t.deepEqual(applyConnectTo(entries, { host: '10.0.0.9', port: 443 }, requested), { host: '10.0.0.9', port: 8443 }, 'by the requested destination');
  t.deepEqual(applyConnectTo(entries, { host: '10.0.0.1', port: 5432 }, { host: 'db.test', port: 5432 }), { host: '127.0.0.2', port: 5432 });
  t.deepEqual(applyConnectTo(entries, { host: 'www.test', port: 80 }, { host: 'www.test', port: 80 }), { host: '127.0.0.3', port: 80 });
  t.deepEqual(applyConnectTo(entries, { host: 'www.test', port: 443 }, { host: 'www.test', port: 443 }), { host: 'www.test', port: 443 }, 'nothing matches');
  t.deepEqual(applyConnectTo([], { host: 'www.test', port: 443 }, requested), { host: 'www.test', port: 443 });
});

test('explicit proxy: CONNECT api.example.test:443 goes where --connect-to says; the decision and audit keep :443', async (t) => {
  const server = await tlsEchoServer(t);
  const agent = await startTestAgent(t, {
    files: { 'api.yaml': serviceEntry('api', ['api.example.test'], [{ number: 443, protocol: 'TLS' }]) },
    config: { connectTo: [parseConnectTo(`api.example.test:443:127.0.0.1:${server.port}`)] },
  });
  const tunnel = await proxyConnect(agent.proxyPort, 'api.example.test:443');
  t.is(tunnel.status, 200);
  const { reply } = await tlsExchange({ socket: tunnel.socket, servername: 'api.example.test', message: 'ping' });
  t.is(reply, 'hello api.example.test http/1.1: ping');
  const record = await agent.audit.find(() => true);
  t.like(record, { decision: 'allow', host: 'api.example.test', port: 443, dst: `127.0.0.1:${server.port}`, route: 'direct', error: null });
});

test('explicit proxy: an absolute-URI request on port 80, with HOST2 a name that --resolve answers', async (t) => {
  const server = await httpServer(t);
  const agent = await startTestAgent(t, {
    files: { 'api.yaml': serviceEntry('api', ['api.example.test'], [{ number: 80, protocol: 'HTTP' }]) },
    config: {
      connectTo: [parseConnectTo(`api.example.test:80:backend.internal:${server.port}`)],
      resolve: [{ host: 'backend.internal', port: server.port, address: '127.0.0.1' }],
    },
  });
  const res = await fetchViaProxy(agent.proxyPort, 'http://api.example.test/v1/items');
  t.is(res.status, 200);
  t.like(JSON.parse(res.body), { url: '/v1/items', host: 'api.example.test' });
  t.like(await agent.audit.find(() => true), { decision: 'allow', port: 80, dst: `127.0.0.1:${server.port}`, http: { method: 'GET', path: '/v1/items', status: 200 } });
});

test('transparent: a connection redirected from 127.0.0.9:443 with SNI api.example.test goes to the --connect-to target', async (t) => {
  const server = await tlsEchoServer(t);
  const agent = await startTestAgent(t, {
    files: { 'api.yaml': serviceEntry('api', ['api.example.test'], [{ number: 443, protocol: 'TLS' }], { resolution: 'NONE' }) },
    originalDestination: (): Destination => ({ address: '127.0.0.9', port: 443 }),
    config: { connectTo: [parseConnectTo(`api.example.test:443:127.0.0.1:${server.port}`)], resolve: [{ host: 'api.example.test', port: 443, address: '127.0.0.9' }] },
  });
  const { reply } = await tlsExchange({ port: agent.outboundPort, servername: 'api.example.test', message: 'ping' });
  t.is(reply, 'hello api.example.test http/1.1: ping');
  t.like(await agent.audit.find(() => true), { decision: 'allow', host_source: 'sni', port: 443, dst: `127.0.0.1:${server.port}` });
});

test('a --connect-to target that is the agent itself is refused as a loop', async (t) => {
  const port = await freePort();
  const agent = await startTestAgent(t, {
    files: { 'api.yaml': serviceEntry('api', ['api.example.test'], [{ number: 443, protocol: 'TLS' }]) },
    config: { proxyPort: port, connectTo: [parseConnectTo(`api.example.test:443:127.0.0.1:${port}`)] },
  });
  const refused = await proxyConnect(agent.proxyPort, 'api.example.test:443');
  t.is(refused.status, 403);
  t.is(refused.headers['x-egressd-reason'], 'loop');
  t.like(await agent.audit.find(() => true), { decision: 'deny', reason: 'loop', rule: 'ServiceEntry/default/api', dst: `127.0.0.1:${port}` });
  t.is(agent.audit.items.length, 1, 'no second connection was made');
});

/** A port nothing listens on now, for an agent that must know its own port before it starts. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function fetchViaProxy(proxyPort: number, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxyPort, path: url, headers: { Host: new URL(url).host } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}
