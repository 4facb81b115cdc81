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
  client.destroy(new Error('agent shutting down'));
  t.like(await done, { error: 'client: agent shutting down' });
  const [error] = (await once(app, 'error')) as [NodeJS.ErrnoException];
  t.is(error.code, 'ECONNRESET');
});

test('what the destination sent before the hand-over reaches the app first', async (t) => {
  const { app, server, client, upstream } = await pair(t);
  server.write('220 banner\r\n');
  await new Promise((resolve) => setTimeout(resolve, 50));
  const done = relay(client, upstream, { replay: Buffer.alloc(0), idleTimeoutMs: 10_000, onFirstResponseBytes: (chunk) => t.is(chunk.toString(), '220 banner\r\n') });
  const atApp = readAll(app);
  server.end('bye\r\n');
  app.end();
  t.is((await atApp).toString(), '220 banner\r\nbye\r\n');
  t.like(await done, { bytesReceived: 17 });
});
