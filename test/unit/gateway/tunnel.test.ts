import test from 'ava';
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { OpenTunnel, TunnelResult } from '../../../src/tunnel/pool.ts';
import { startWorld, type Seen } from './_world.ts';

function opened(t: { fail(message: string): void }, result: TunnelResult): OpenTunnel {
  if (!result.ok) {
    t.fail(`tunnel refused: ${result.status} ${result.reason}`);
    throw new Error('refused');
  }
  return result;
}

/** One HTTP/1.1 request over a tunnel stream, with node:http as the client. */
function httpOver(stream: Duplex, options: http.RequestOptions, body?: string | string[]): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...options, createConnection: () => stream }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    for (const part of Array.isArray(body) ? body : body === undefined ? [] : [body]) req.write(part);
    req.end();
  });
}

/** A loopback port whose first connection is spliced onto the tunnel stream. */
async function carry(t: { teardown(fn: () => void): void }, stream: Duplex): Promise<number> {
  const server = net.createServer((socket) => {
    server.close();
    socket.pipe(stream).pipe(socket);
  });
  t.teardown(() => server.close());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

test('a TLS tunnel reaches an allowed host: the application TLS passes through, and the audit record names the caller', async (t) => {
  const w = await startWorld(t);
  const pool = w.pool('default');
  const tunnel = opened(t, await pool.open({ host: 'api.example.test', port: 443, protocol: 'tls', sni: 'api.example.test', originalDst: '93.184.216.34:443', connectionId: 'c-1' }));
  t.is(tunnel.replica, w.address);
  t.is(tunnel.gatewayReplica, 'gw-0');
  t.is(tunnel.decision, 'allow');
  t.is(tunnel.rule, 'ServiceEntry/egress/api');
  const secure = tls.connect({ socket: tunnel.stream, servername: 'api.example.test', ca: w.internet.rootPem });
  await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
  secure.end('GET /passthrough HTTP/1.1\r\nhost: api.example.test\r\nconnection: close\r\n\r\n');
  const chunks: Buffer[] = [];
  for await (const chunk of secure) chunks.push(chunk as Buffer);
  const response = Buffer.concat(chunks).toString();
  t.regex(response, /^HTTP\/1\.1 200 /);
  const seen = JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4)) as Seen;
  t.is(seen.url, '/passthrough');
  t.is(seen.servername, 'api.example.test');
  t.is(seen.headers['x-forwarded-client-cert'], undefined, 'passthrough bytes are not touched');
  // TLS over a generic Duplex does not pass its end on: end the tunnel as the agent's splice would.
  tunnel.stream.end();
  const record = await w.audit.find((r) => r.connection_id === 'c-1');
  t.like(record, {
    decision: 'allow',
    reason: 'allowed_by_rule',
    rule: 'ServiceEntry/egress/api',
    host: 'api.example.test',
    sni: 'api.example.test',
    port: 443,
    dst: `127.0.0.1:${w.https.port}`,
    protocol: 'tls',
    route: 'gateway',
    component: 'gateway',
    namespace: 'default',
    identity: 'spiffe://cluster.local/ns/default/sa/app',
    replica: 'gw-0',
    error: null,
  });
  t.true(record.bytes_sent > 0 && record.bytes_received > 0);
});

test('plain HTTP in a tunnel leaves as HTTPS: verified against the rule CA, SNI set, x-forwarded-client-cert and x-request-id added, chunked body intact', async (t) => {
  const w = await startWorld(t);
  const pool = w.pool('default');
  const tunnel = opened(t, await pool.open({ host: 'api.example.test', port: 80, protocol: 'http', httpHost: 'api.example.test', connectionId: 'c-2' }));
  const res = await httpOver(
    tunnel.stream,
    { method: 'POST', path: '/orders?id=7', headers: { host: 'api.example.test', 'x-forwarded-client-cert': 'By=forged;URI=spiffe://cluster.local/ns/admin/sa/root' } },
    ['first chunk,', ' second chunk'],
  );
  t.is(res.status, 200);
  const seen = JSON.parse(res.body) as Seen;
  t.is(seen.method, 'POST');
  t.is(seen.url, '/orders?id=7');
  t.is(seen.body, 'first chunk, second chunk');
  t.is(seen.headers['transfer-encoding'], 'chunked');
  t.is(seen.servername, 'api.example.test');
  const xfcc = String(seen.headers['x-forwarded-client-cert']);
  t.regex(xfcc, /^By=spiffe:\/\/cluster\.local\/ns\/egressd\/sa\/gateway;Hash=[0-9a-f]{64};URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/app$/);
  t.regex(String(seen.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  tunnel.stream.end();
  const record = await w.audit.find((r) => r.connection_id === 'c-2');
  t.like(record, {
    decision: 'allow',
    protocol: 'http',
    http: { method: 'POST', path: '/orders?id=7', status: 200 },
    request_id: seen.headers['x-request-id'] as string,
    identity: 'spiffe://cluster.local/ns/default/sa/app',
  });
  t.regex(record.dst ?? '', /^127\.0\.0\.1:\d+$/, 'the address the gateway dialled for the originated request');
});

test('keep-alive: several requests in one HTTP tunnel, one audit record each', async (t) => {
  const w = await startWorld(t);
  const tunnel = opened(t, await w.pool().open({ host: 'api.example.test', port: 8080, protocol: 'http', connectionId: 'c-3' }));
  // The application's keep-alive connection, carried by the tunnel as the agent would carry it.
  const port = await carry(t, tunnel.stream);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (const path of ['/one', '/two', '/three']) {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
      http.get({ agent, host: '127.0.0.1', port, path, headers: { host: 'api.example.test:8080' } }, resolve).on('error', reject),
    );
    res.resume();
    await new Promise((resolve) => res.on('end', resolve));
    t.is(res.statusCode, 200);
  }
  t.deepEqual(
    w.http.seen.map((s) => s.url),
    ['/one', '/two', '/three'],
  );
  t.is(w.http.seen[0]!.headers['x-forwarded-client-cert'], undefined, 'no identity in cleartext to the destination');
  agent.destroy();
  await w.audit.find((r) => r.connection_id === 'c-3' && r.http?.path === '/three');
  t.is(w.audit.items.filter((r) => r.connection_id === 'c-3').length, 3);
});

test('a host no rule allows: 404 inside an HTTP tunnel, 403 for a TLS tunnel, each with an audit record', async (t) => {
  const w = await startWorld(t);
  const pool = w.pool();
  const refused = await pool.open({ host: 'evil.example.test', port: 443, protocol: 'tls', sni: 'evil.example.test', connectionId: 'deny-tls' });
  t.like(refused, { ok: false, status: 403, reason: 'no_matching_rule', gatewayReplica: 'gw-0' });
  const denied = opened(t, await pool.open({ host: 'evil.example.test', port: 80, protocol: 'http', connectionId: 'deny-http' }));
  t.is(denied.decision, 'deny');
  const res = await httpOver(denied.stream, { method: 'GET', path: '/x', headers: { host: 'evil.example.test' } });
  t.is(res.status, 404);
  t.like(await w.audit.find((r) => r.connection_id === 'deny-tls'), { decision: 'deny', reason: 'no_matching_rule', protocol: 'tls' });
  t.like(await w.audit.find((r) => r.connection_id === 'deny-http'), {
    decision: 'deny',
    reason: 'no_matching_rule',
    http: { method: 'GET', path: '/x', status: 404 },
  });
  t.is(w.https.seen.length + w.http.seen.length, 0);
});

test('a request whose Host is not the tunnel host gets 404 and reaches nothing', async (t) => {
  const w = await startWorld(t);
  const tunnel = opened(t, await w.pool().open({ host: 'api.example.test', port: 8080, protocol: 'http', connectionId: 'mismatch' }));
  const res = await httpOver(tunnel.stream, { method: 'GET', path: '/', headers: { host: 'other.example.test' } });
  t.is(res.status, 404);
  t.like(await w.audit.find((r) => r.connection_id === 'mismatch'), { decision: 'deny', reason: 'host_mismatch' });
  t.is(w.http.seen.length, 0);
});

test('a TLS tunnel whose SNI header disagrees with its host is refused', async (t) => {
  const w = await startWorld(t);
  const result = await w.pool().open({ host: 'api.example.test', port: 443, protocol: 'tls', sni: 'evil.example.test', connectionId: 'sni' });
  t.like(result, { ok: false, status: 403, reason: 'host_mismatch' });
});

test('the namespace comes from the certificate: a ServiceEntry not exported to the caller is denied at the gateway', async (t) => {
  const w = await startWorld(t);
  const outsider = await w.pool('default').open({ host: 'team.example.test', port: 443, protocol: 'tls', connectionId: 'outsider' });
  t.like(outsider, { ok: false, status: 403, reason: 'not_exported', rule: 'ServiceEntry/team/team-only' });
  const member = await w.pool('team').open({ host: 'team.example.test', port: 443, protocol: 'tls', connectionId: 'member' });
  t.true(member.ok);
  if (member.ok) member.stream.destroy();
  t.like(await w.audit.find((r) => r.connection_id === 'outsider'), { namespace: 'default', identity: 'spiffe://cluster.local/ns/default/sa/app', reason: 'not_exported' });
});

for (const [host, address, range] of [
  ['metadata.example.test', '169.254.169.254', 'link_local'],
  ['private.example.test', '10.0.0.1', 'private'],
  ['loopback.example.test', '127.0.0.1', 'loopback'],
] as const) {
  test(`an allowed name resolving to ${address} (${range}) is refused before any connection`, async (t) => {
    const w = await startWorld(t);
    const result = await w.pool().open({ host, port: 443, protocol: 'tls', originalDst: '93.184.216.34:443', connectionId: host });
    t.like(result, { ok: false, status: 403, reason: 'forbidden_address' });
    const record = await w.audit.find((r) => r.connection_id === host);
    t.like(record, { decision: 'deny', reason: 'forbidden_address', dst: null });
    t.true(record.error!.includes(`${address} (${range})`));
    const http = opened(t, await w.pool().open({ host, port: 80, protocol: 'http', connectionId: `${host}-http` }));
    const res = await httpOver(http.stream, { method: 'GET', path: '/latest/meta-data/', headers: { host } });
    t.is(res.status, 403);
    t.like(await w.audit.find((r) => r.connection_id === `${host}-http`), { decision: 'deny', reason: 'forbidden_address', http: { status: 403 } });
  });
}

test('--allow-private-cidrs opens a private range for labs', async (t) => {
  const { parseCidr } = await import('../../../src/core/ip-ranges.ts');
  const w = await startWorld(t, { gateway: { allowPrivateCidrs: [parseCidr('127.0.0.0/8')!], resolve: [{ host: 'loopback.example.test', address: '127.0.0.1' }] } });
  // Port 443 on loopback is closed here: the gateway dials (and fails), where without the flag it refused.
  const result = await w.pool().open({ host: 'loopback.example.test', port: 443, protocol: 'tls', connectionId: 'lab' });
  t.like(result, { ok: false, status: 502, reason: 'allowed_by_rule' });
  t.regex((await w.audit.find((r) => r.connection_id === 'lab')).error ?? '', /127\.0\.0\.1:443/);
});
