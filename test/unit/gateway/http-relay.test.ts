/**
 * The gateway's HTTP relay against a destination that answers byte by byte
 * as a test says (a raw TCP server), with requests written raw into real
 * tunnels of a real gateway: pipelining, bodies framed every way a response
 * may be, the server closing at every moment, pooling across tunnels.
 */
import test, { type ExecutionContext } from 'ava';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { TunnelRequest } from '../../../src/tunnel/protocol.ts';
import { apiEntry } from '../../helpers/gateway-allowlist.ts';
import { startWorld, type World } from './_world.ts';

const RAW_PORT = 8081;

interface RawServer {
  port: number;
  connections: number;
  /** Each request head as received, in order. */
  heads: string[];
}

/** A destination on loopback that answers the n-th request (counted over all connections) with `answer(n, head)`; `null` closes the connection instead. */
async function rawServer(t: ExecutionContext, answer: (n: number, head: string) => string | null): Promise<RawServer> {
  const raw: RawServer = { port: 0, connections: 0, heads: [] };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    raw.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let end: number;
      while ((end = buffered.indexOf('\r\n\r\n')) >= 0) {
        const head = buffered.slice(0, end + 4);
        buffered = buffered.slice(end + 4);
        raw.heads.push(head);
        const reply = answer(raw.heads.length, head);
        if (reply === null) {
          socket.destroy();
          return;
        }
        socket.write(reply);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  raw.port = (server.address() as net.AddressInfo).port;
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return raw;
}

/** A destination that answers the first bytes it gets with `reply` and closes: a body framed by the connection's end, or cut short. */
async function closingServer(t: ExecutionContext, reply: string): Promise<RawServer> {
  const raw: RawServer = { port: 0, connections: 0, heads: [] };
  const server = net.createServer((socket) => {
    raw.connections++;
    socket.once('data', () => socket.end(reply));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  raw.port = (server.address() as net.AddressInfo).port;
  return raw;
}

async function world(t: ExecutionContext, raw: RawServer): Promise<World> {
  return startWorld(t, {
    allowlist: (w) =>
      apiEntry({
        caCertificates: w.internetCaFile,
        resolution: 'STATIC',
        morePorts: [{ number: RAW_PORT, name: 'raw', protocol: 'HTTP' }],
        endpoints: [{ address: '127.0.0.1', ports: { https: w.https.port, http: w.https.port, raw: raw.port } }],
      }),
  });
}

const REQUEST: TunnelRequest = { host: 'api.example.test', port: RAW_PORT, protocol: 'http' };

async function tunnel(t: ExecutionContext, w: World, connectionId: string): Promise<Duplex> {
  const result = await w.pool().open({ ...REQUEST, connectionId });
  if (!result.ok) throw new Error(`tunnel refused: ${result.status}`);
  t.teardown(() => result.stream.destroy());
  return result.stream;
}

/** Writes `requests` into the tunnel, half-closes it, and reads everything back until the gateway ends it. */
async function exchange(stream: Duplex, requests: string, halfClose = true): Promise<string> {
  const chunks: Buffer[] = [];
  const done = new Promise<string>((resolve) => {
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    stream.once('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    stream.once('error', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
  stream.write(requests);
  if (halfClose) stream.end();
  return done;
}

/** The first `n` gateway records of a tunnel, once written. */
async function recordsOf(w: World, connectionId: string, n: number): Promise<World['audit']['items']> {
  const mine = () => w.audit.items.filter((r) => r.connection_id === connectionId);
  await w.audit.find(() => mine().length >= n, `${n} records of ${connectionId}`);
  return mine().slice(0, n);
}

const get = (path: string, method = 'GET', extra = ''): string => `${method} ${path} HTTP/1.1\r\nHost: api.example.test:${RAW_PORT}\r\n${extra}\r\n`;
const ok = (body: string, extra = ''): string => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`;

test('pipelined requests are answered in order; a HEAD answer has no body whatever its length says; each request has its record', async (t) => {
  const raw = await rawServer(t, (n, head) => (head.startsWith('HEAD') ? 'HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n' : ok(`body-${n}`)));
  const w = await world(t, raw);
  const out = await exchange(await tunnel(t, w, 'pipe'), get('/a') + get('/b', 'HEAD') + get('/c'));
  t.is(out, ok('body-1') + 'HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n' + ok('body-3'));
  t.is(raw.connections, 1);
  t.deepEqual(
    raw.heads.map((h) => h.split(' ', 2).join(' ')),
    ['GET /a', 'HEAD /b', 'GET /c'],
  );
  const records = await recordsOf(w, 'pipe', 3);
  t.deepEqual(
    records.map((r) => [r.http?.method, r.http?.path, r.http?.status, r.decision]),
    [
      ['GET', '/a', 200, 'allow'],
      ['HEAD', '/b', 200, 'allow'],
      ['GET', '/c', 200, 'allow'],
    ],
  );
});

test('chunked answers, a 100 Continue before the answer and a 204 pass as the server sent them', async (t) => {
  const chunked = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n';
  const replies = [chunked, 'HTTP/1.1 100 Continue\r\n\r\n' + ok('after-continue'), 'HTTP/1.1 204 No Content\r\n\r\n', ok('last')];
  const raw = await rawServer(t, (n) => replies[n - 1]!);
  const w = await world(t, raw);
  const out = await exchange(await tunnel(t, w, 'framing'), get('/1') + get('/2') + get('/3') + get('/4'));
  t.is(out, replies.join(''));
  const records = await recordsOf(w, 'framing', 4);
  t.deepEqual(
    records.map((r) => r.http?.status),
    [200, 200, 204, 200],
  );
});

test('an answer without length ends with the connection, and so does the tunnel', async (t) => {
  const w = await world(t, await closingServer(t, 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the server closes'));
  const out = await exchange(await tunnel(t, w, 'until-close'), get('/stream'), false);
  t.is(out, 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the server closes');
  t.like(await w.audit.find((r) => r.connection_id === 'until-close'), { http: { status: 200 }, error: null });
});

test('a connection is kept between tunnels, unless the server said it closes it', async (t) => {
  const raw = await rawServer(t, (n) => (n === 2 ? ok('closing', 'Connection: close\r\n') : ok(`n${n}`)));
  const w = await world(t, raw);
  t.is(await exchange(await tunnel(t, w, 'first'), get('/1')), ok('n1'));
  await w.audit.find((r) => r.connection_id === 'first');
  t.is(await exchange(await tunnel(t, w, 'second'), get('/2') + get('/never')), ok('closing', 'Connection: close\r\n'), 'the tunnel ends with the server\'s close');
  t.is(raw.connections, 1, 'the second tunnel took the first one\'s connection');
  // The request pipelined behind the close may or may not have reached the server first.
  t.regex(await exchange(await tunnel(t, w, 'third'), get('/3')), /^HTTP\/1\.1 200 OK\r\nContent-Length: 2\r\n\r\nn[34]$/);
  t.is(raw.connections, 2, 'the connection the server closed was not reused');
});

test('the server closing before its answer gets the application a 502; closing inside it cuts the tunnel; both are recorded', async (t) => {
  const raw = await rawServer(t, () => null);
  const w = await world(t, raw);
  const before = await exchange(await tunnel(t, w, 'before'), get('/1'));
  t.regex(before, /^HTTP\/1\.1 502 Bad Gateway\r\n[^]*connection: close\r\n/);
  t.like(await w.audit.find((r) => r.connection_id === 'before'), { http: { status: 502 } });
  t.regex((await w.audit.find((r) => r.connection_id === 'before')).error ?? '', /closed/);

  const w2 = await world(t, await closingServer(t, 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart of it'));
  const inside = await exchange(await tunnel(t, w2, 'inside'), get('/2'), false);
  t.is(inside, 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart of it', 'what came passes, then the tunnel is cut');
  const record = await w2.audit.find((r) => r.connection_id === 'inside');
  t.like(record, { http: { status: 200 } });
  t.not(record.error, null);
});

test('a response the relay cannot frame is a 502, never passed on', async (t) => {
  const raw = await rawServer(t, () => 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
  const w = await world(t, raw);
  const out = await exchange(await tunnel(t, w, 'smuggle'), get('/x'));
  t.regex(out, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
  t.regex((await w.audit.find((r) => r.connection_id === 'smuggle')).error ?? '', /both Content-Length and Transfer-Encoding/);
});

test('a request that could hide another is refused 400 and reaches nothing; a wrong host between good ones gets its 404 in its place', async (t) => {
  const raw = await rawServer(t, (n) => ok(`n${n}`));
  const w = await world(t, raw);
  const smuggled = await exchange(await tunnel(t, w, 'bad'), `POST / HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n` + get('/hidden'));
  t.regex(smuggled, /^HTTP\/1\.1 400 Bad Request\r\n/);
  t.like(await w.audit.find((r) => r.connection_id === 'bad'), { decision: 'deny', reason: 'bad_request' });
  t.is(raw.heads.length, 0);

  const mixed = await exchange(await tunnel(t, w, 'mixed'), get('/1') + 'GET /2 HTTP/1.1\r\nHost: other.example.test\r\n\r\n' + get('/3'));
  t.is(mixed, ok('n1') + 'HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: 39\r\n\r\negressd gateway: no route to this host\n' + ok('n2'));
  t.deepEqual(
    raw.heads.map((h) => h.split(' ', 2)[1]),
    ['/1', '/3'],
  );
  const records = await recordsOf(w, 'mixed', 3);
  t.deepEqual(
    records.map((r) => [r.http?.path, r.http?.status, r.reason]),
    [
      ['/1', 200, 'allowed_by_rule'],
      ['/2', 404, 'host_mismatch'],
      ['/3', 200, 'allowed_by_rule'],
    ],
  );
});

test('the request head goes out rewritten: hop-by-hop headers out, x-request-id kept or added, request bodies intact', async (t) => {
  const raw = await rawServer(t, (n) => ok(`n${n}`));
  const w = await world(t, raw);
  const body = 'a=1&b=2';
  const request =
    `POST http://api.example.test:${RAW_PORT}/form?x=1 HTTP/1.1\r\nHost: api.example.test:${RAW_PORT}\r\nConnection: keep-alive, X-Private\r\nX-Private: secret\r\n` +
    `Keep-Alive: timeout=5\r\nProxy-Authorization: Basic Zm9v\r\nX-Request-Id: given-id\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  t.is(await exchange(await tunnel(t, w, 'rewrite'), request + get('/next')), ok('n1') + ok('n2'));
  t.is(raw.heads[0], `POST /form?x=1 HTTP/1.1\r\nHost: api.example.test:${RAW_PORT}\r\nContent-Length: ${body.length}\r\nx-request-id: given-id\r\n\r\n`);
  t.regex(raw.heads[1]!, /^a=1&b=2GET \/next HTTP\/1\.1\r\n/, 'the body went on as sent, the next request right after it');
  t.like(await w.audit.find((r) => r.connection_id === 'rewrite'), { request_id: 'given-id', http: { path: '/form?x=1' } });
});
