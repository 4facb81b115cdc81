import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net, { type AddressInfo, type Socket } from 'node:net';
import { relay } from '../../../src/agent/native-relay.ts';

/**
 * The relay thread on real loopback sockets: an "app" connects to a listener whose accepted
 * socket is the relay's client side; the relay's upstream side is a connection to a "server".
 */
interface Pair {
  app: Socket;
  server: Socket;
  client: Socket;
  upstream: Socket;
}

async function pair(t: { teardown(fn: () => void): void }): Promise<Pair> {
  const front = net.createServer({ allowHalfOpen: true });
  const back = net.createServer({ allowHalfOpen: true });
  await Promise.all([once(front.listen(0, '127.0.0.1'), 'listening'), once(back.listen(0, '127.0.0.1'), 'listening')]);
  t.teardown(() => {
    front.close();
    back.close();
  });
  const accepted = once(front, 'connection') as Promise<[Socket]>;
  const app = net.connect({ port: (front.address() as AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  const [client] = await accepted;
  const served = once(back, 'connection') as Promise<[Socket]>;
  const upstream = net.connect({ port: (back.address() as AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  await once(upstream, 'connect');
  const [server] = await served;
  client.pause();
  for (const socket of [app, server, client, upstream]) socket.on('error', () => undefined);
  t.teardown(() => {
    for (const socket of [app, server, client, upstream]) socket.destroy();
  });
  return { app, server, client, upstream };
}

function readAll(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve) => socket.once('end', () => resolve(Buffer.concat(chunks))));
}

const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

test('16 MiB each way through a reader that pauses: every byte in order, half-closes carried, counted', async (t) => {
  const { app, server, client, upstream } = await pair(t);
  const up = randomBytes(16 * 1024 * 1024);
  const down = randomBytes(16 * 1024 * 1024);
  const done = relay(client, upstream, { replay: Buffer.from('hello '), idleTimeoutMs: 10_000 });
  // The server reads slowly at first, so that the relay holds bytes back and the app's writes wait.
  server.pause();
  setTimeout(() => server.resume(), 200);
  const atServer = readAll(server);
  const atApp = readAll(app);
  app.end(up);
  server.end(down);
  const [received, sent, result] = await Promise.all([atServer, atApp, done]);
  t.is(sha(received), sha(Buffer.concat([Buffer.from('hello '), up])));
  t.is(sha(sent), sha(down));
  t.deepEqual(result, { bytesSent: up.length + 6, bytesReceived: down.length });
});

test('a destination that resets mid-stream: the app is reset too and the result names the side', async (t) => {
  const { app, server, client, upstream } = await pair(t);
  const done = relay(client, upstream, { replay: Buffer.alloc(0), idleTimeoutMs: 10_000 });
  app.write('ping');
  await once(server, 'data');
  server.resetAndDestroy();
  const [error] = (await once(app, 'error').catch((err: unknown) => [err])) as [NodeJS.ErrnoException];
  t.is(error.code, 'ECONNRESET');
  t.like(await done, { bytesSent: 4, error: 'upstream: ECONNRESET' });
});

test('the agent destroying the client socket (shutdown past its grace period) resets a relayed connection', async (t) => {
  const { app, client, upstream, server } = await pair(t);
  const done = relay(client, upstream, { replay: Buffer.alloc(0), idleTimeoutMs: 10_000 });
  app.write('ping');
  await once(server, 'data');
  // The app may see the reset before the relay's report reaches JavaScript: listen first.
  const appError = once(app, 'error') as Promise<[NodeJS.ErrnoException]>;
  client.destroy(new Error('agent shutting down'));
  t.like(await done, { error: 'client: agent shutting down' });
  const [error] = await appError;
  t.is(error.code, 'ECONNRESET');
});

test('what the destination sent before the hand-over reaches the app first', async (t) => {
  const { app, server, client, upstream } = await pair(t);
  server.write('220 banner\r\n');
  // Until Node has read the banner (it reads a fresh socket before anyone asks): the case under test.
  while (upstream.readableLength < '220 banner\r\n'.length) await new Promise((resolve) => setTimeout(resolve, 5));
  const done = relay(client, upstream, { replay: Buffer.alloc(0), idleTimeoutMs: 10_000, onFirstResponseBytes: (chunk) => t.is(chunk.toString(), '220 banner\r\n') });
  const atApp = readAll(app);
  server.end('bye\r\n');
  app.end();
  t.is((await atApp).toString(), '220 banner\r\nbye\r\n');
  t.like(await done, { bytesReceived: 17 });
});

/** Everything the server reads until the relay reports, as text. */
function received(server: Socket): () => string {
  let text = '';
  server.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  return () => text;
}

const request = (host: string): string => `GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
const upgrade = 'GET /ws HTTP/1.1\r\nHost: api.example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n';

/** A guarded relay whose client has sent a WebSocket upgrade request (the sniffer's replay). */
async function upgradeRelayed(t: { teardown(fn: () => void): void }): Promise<{ app: Socket; server: Socket; done: ReturnType<typeof relay> }> {
  const { app, server, client, upstream } = await pair(t);
  return { app, server, done: relay(client, upstream, { replay: Buffer.from(upgrade), idleTimeoutMs: 10_000, guard: { host: 'api.example.test' } }) };
}

test('a request the guard has not read whole never reaches the server: one ended by bare LFs stays with the relay', async (t) => {
  const { app, server, client, upstream } = await pair(t);
  const atServer = readAll(server);
  const done = relay(client, upstream, { replay: Buffer.from(request('api.example.test')), idleTimeoutMs: 10_000, guard: { host: 'api.example.test' } });
  app.end('GET / HTTP/1.1\nHost: evil.example.test\n\n');
  server.end();
  t.is((await atServer).toString('latin1'), request('api.example.test'));
  t.like(await done, { bytesSent: request('api.example.test').length });
});

test('an Upgrade the server answers with 200: the next request is read, and one for another host is cut before it leaves', async (t) => {
  const { app, server, done } = await upgradeRelayed(t);
  const atServer = received(server);
  app.write(request('evil.example.test'));
  await once(server, 'data');
  server.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
  t.like(await done, { refused: 'request 2 names host "evil.example.test", not "api.example.test" that the connection was allowed for' });
  // The relay resets the server too; what it read until then is all it got.
  await new Promise((resolve) => (server.closed ? resolve(undefined) : server.once('close', resolve)));
  t.is(atServer(), upgrade);
});

const AFTER_101: Array<{ name: string; clientEnds: boolean; later: string; answer: string }> = [
  {
    name: 'an Upgrade the server answers with 101: what the client sent meanwhile goes on, and the stream is no longer read',
    clientEnds: false,
    later: request('not-http-any-more.example.test'),
    answer: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02ok',
  },
  {
    name: 'a client that half-closes while its bytes wait for the answer to an Upgrade: its FIN follows them, after the 101',
    clientEnds: true,
    later: '',
    answer: 'HTTP/1.1 101 Switching Protocols\r\n\r\n',
  },
];
for (const { name, clientEnds, later, answer } of AFTER_101) {
  test(name, async (t) => {
    const { app, server, done } = await upgradeRelayed(t);
    const atServer = readAll(server);
    const atApp = readAll(app);
    const frames = Buffer.from('\x81\x05hello', 'latin1');
    if (clientEnds) app.end(frames);
    else app.write(frames);
    await new Promise((resolve) => setTimeout(resolve, 50));
    server.end(Buffer.from(answer, 'latin1'));
    if (!clientEnds) app.end(later);
    t.is((await atServer).toString('latin1'), `${upgrade}\x81\x05hello${later}`);
    t.is((await atApp).toString('latin1'), answer);
    t.deepEqual(Object.keys(await done).sort(), ['bytesReceived', 'bytesSent']);
  });
}
