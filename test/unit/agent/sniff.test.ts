import test, { type ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { sniff, type SniffOptions } from '../../../src/agent/sniff.ts';

const curlHello = Buffer.from((JSON.parse(readFileSync(new URL('../../fixtures/clienthello/curl-h2.json', import.meta.url), 'utf8')) as { hex: string }).hex, 'hex');
const OPTIONS: SniffOptions = { peekTimeoutMs: 50, sniffTimeoutMs: 10_000 };

/** A connected pair on loopback: what the agent accepted, and the client end. */
async function pair(t: ExecutionContext): Promise<{ accepted: net.Socket; client: net.Socket }> {
  const server = net.createServer({ allowHalfOpen: true });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const acceptedP = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, allowHalfOpen: true });
  client.on('error', () => undefined);
  const accepted = await acceptedP;
  accepted.on('error', () => undefined);
  t.teardown(() => {
    client.destroy();
    accepted.destroy();
    server.close();
  });
  return { accepted, client };
}

/** Writes `data` in `size`-byte pieces, each in its own turn of the event loop. */
async function dribble(socket: net.Socket, data: Buffer, size: number): Promise<void> {
  for (let i = 0; i < data.length; i += size) {
    socket.write(data.subarray(i, i + size));
    await new Promise((resolve) => setImmediate(resolve));
  }
}

test('a ClientHello written a few bytes at a time is recognised, and every byte read is kept for the replay', async (t) => {
  const { accepted, client } = await pair(t);
  const result = sniff(accepted, OPTIONS);
  await dribble(client, curlHello, 7);
  const sniffed = await result;
  t.like(sniffed, { kind: 'tls', sni: 'api.example.test', alpn: ['h2', 'http/1.1'], ended: false });
  t.deepEqual(sniffed.buffered, curlHello);
});

test('bytes sent after the sniffed head stay in the socket for the next stage', async (t) => {
  const { accepted, client } = await pair(t);
  const result = sniff(accepted, OPTIONS);
  client.write('GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n');
  const sniffed = await result;
  t.like(sniffed, { kind: 'http', method: 'GET', host: 'api.example.test' });
  client.write('more');
  // The sniffer leaves the socket paused; the next stage (pipe) resumes it.
  const next = await new Promise<Buffer>((resolve) => accepted.once('data', resolve).resume());
  t.is(Buffer.concat([sniffed.buffered, next]).toString(), 'GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\nmore');
});

test('a silent client: after the peek timeout the connection is plain TCP with nothing buffered', async (t) => {
  const { accepted } = await pair(t);
  const sniffed = await sniff(accepted, OPTIONS);
  t.like(sniffed, { kind: 'tcp', ended: false });
  t.is(sniffed.buffered.length, 0);
});

test('bytes already read by someone else (the CONNECT head) are sniffed first', async (t) => {
  const { accepted, client } = await pair(t);
  const result = sniff(accepted, { ...OPTIONS, initial: curlHello.subarray(0, 100) });
  client.write(curlHello.subarray(100));
  const sniffed = await result;
  t.like(sniffed, { kind: 'tls', sni: 'api.example.test' });
  t.deepEqual(sniffed.buffered, curlHello);
});

test('a client that half-closes in the middle of a ClientHello is malformed, with ended set', async (t) => {
  const { accepted, client } = await pair(t);
  const result = sniff(accepted, OPTIONS);
  client.end(curlHello.subarray(0, 50));
  t.like(await result, { kind: 'malformed_tls', ended: true });
});

test('a client that half-closes after a few non-TLS bytes is TCP, ended, and its bytes are kept', async (t) => {
  const { accepted, client } = await pair(t);
  const result = sniff(accepted, OPTIONS);
  client.end('GE');
  const sniffed = await result;
  t.like(sniffed, { kind: 'tcp', ended: true });
  t.is(sniffed.buffered.toString(), 'GE');
});

test('a client that resets during the sniff is reported as aborted', async (t) => {
  const { accepted, client } = await pair(t);
  const result = sniff(accepted, OPTIONS);
  client.write(curlHello.subarray(0, 10));
  await new Promise((resolve) => accepted.once('readable', resolve));
  client.resetAndDestroy();
  t.like(await result, { kind: 'aborted' });
});
