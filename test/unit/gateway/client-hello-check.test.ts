import test from 'ava';
import { readFileSync } from 'node:fs';
import { PassThrough, type Duplex } from 'node:stream';
import tls from 'node:tls';
import { checkClientHello } from '../../../src/gateway/client-hello-check.ts';
import type { OpenTunnel, TunnelResult } from '../../../src/tunnel/pool.ts';
import { startWorld } from './_world.ts';

/** curl's recorded ClientHello, SNI `api.example.test` (test/fixtures/clienthello). */
const curlHello = Buffer.from((JSON.parse(readFileSync(new URL('../../fixtures/clienthello/curl-h2.json', import.meta.url), 'utf8')) as { hex: string; sni: string }).hex, 'hex');

function opened(t: { fail(message: string): void }, result: TunnelResult): OpenTunnel {
  if (!result.ok) {
    t.fail(`tunnel refused: ${result.status} ${result.reason}`);
    throw new Error('refused');
  }
  return result;
}

function closed(stream: Duplex): Promise<void> {
  return new Promise((resolve) => {
    stream.on('error', () => undefined);
    if (stream.destroyed) resolve();
    else stream.once('close', () => resolve());
  });
}

test('checkClientHello keeps every byte read, across one-byte chunks, and leaves the rest of the stream unread', async (t) => {
  const stream = new PassThrough();
  const result = checkClientHello(stream, 'api.example.test', 5000);
  for (const byte of curlHello) stream.write(Buffer.from([byte]));
  t.deepEqual(await result, { ok: true, buffered: curlHello });
  stream.write('after');
  t.true(stream.isPaused());
  t.is(String(stream.read()), 'after');
});

test('checkClientHello: a hello for another name, a prefix that ends, and non-TLS bytes are refused with the reason', async (t) => {
  const other = new PassThrough();
  const mismatch = checkClientHello(other, 'team.example.test', 5000);
  other.end(curlHello);
  t.like(await mismatch, { ok: false, reason: 'host_mismatch' });

  for (const size of [0, 1, 5, 40, curlHello.length - 1]) {
    const cut = new PassThrough();
    const prefix = checkClientHello(cut, 'api.example.test', 5000);
    cut.end(curlHello.subarray(0, size));
    t.like(await prefix, { ok: false, reason: 'malformed_client_hello' }, `prefix of ${size} bytes`);
  }

  const plain = new PassThrough();
  const notTls = checkClientHello(plain, 'api.example.test', 5000);
  plain.write('GET / HTTP/1.1\r\n\r\n');
  t.like(await notTls, { ok: false, reason: 'malformed_client_hello', detail: 'the tls tunnel does not start with a TLS handshake' });
});

test('a tls tunnel whose ClientHello names another host than the tunnel is reset and recorded as host_mismatch', async (t) => {
  const w = await startWorld(t);
  // The header claims nothing: only the bytes tell.
  const tunnel = opened(t, await w.pool().open({ host: 'api.example.test', port: 443, protocol: 'tls', connectionId: 'fronted' }));
  const secure = tls.connect({ socket: tunnel.stream, servername: 'team.example.test', ca: w.internet.rootPem });
  const failure = await new Promise<Error | undefined>((resolve) => secure.once('secureConnect', () => resolve(undefined)).once('error', resolve));
  t.truthy(failure, 'the handshake must not complete');
  const record = await w.audit.find((r) => r.connection_id === 'fronted');
  t.like(record, { decision: 'deny', reason: 'host_mismatch', host: 'api.example.test', protocol: 'tls', bytes_sent: 0 });
  t.regex(record.error ?? '', /ClientHello SNI team\.example\.test is not the tunnel's host api\.example\.test/);
  t.is(w.https.seen.length, 0);
  const counted = (await w.gateway.metrics.tunnels.get()).values.find((v) => v.labels.reason === 'host_mismatch');
  t.is(counted?.value, 1);
});

test('a tls tunnel that carries no ClientHello (other bytes, or none before it ends) is refused as malformed_client_hello', async (t) => {
  const w = await startWorld(t);
  const garbage = opened(t, await w.pool().open({ host: 'api.example.test', port: 443, protocol: 'tls', sni: 'api.example.test', connectionId: 'garbage' }));
  garbage.stream.write('GET / HTTP/1.1\r\nhost: api.example.test\r\n\r\n');
  await closed(garbage.stream);
  t.like(await w.audit.find((r) => r.connection_id === 'garbage'), { decision: 'deny', reason: 'malformed_client_hello', bytes_sent: 0 });

  const empty = opened(t, await w.pool().open({ host: 'api.example.test', port: 443, protocol: 'tls', connectionId: 'empty' }));
  empty.stream.end();
  await closed(empty.stream);
  const record = await w.audit.find((r) => r.connection_id === 'empty');
  t.like(record, { decision: 'deny', reason: 'malformed_client_hello', error: 'no ClientHello before the tunnel ended or timed out' });
  const counted = (await w.gateway.metrics.tunnels.get()).values.find((v) => v.labels.reason === 'malformed_client_hello');
  t.is(counted?.value, 2);
});
