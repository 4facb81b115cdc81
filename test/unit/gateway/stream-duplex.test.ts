import test from 'ava';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { createTunnelHttpServer, serveTunnelHttp } from '../../../src/gateway/stream-duplex.ts';

/** An h2c server whose CONNECT streams are served by node:http through StreamDuplex. */
async function serve(t: { teardown(fn: () => void): void }, handler: http.RequestListener): Promise<http2.ClientHttp2Session> {
  const parser = createTunnelHttpServer({}, handler);
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.respond({ ':status': 200 });
    serveTunnelHttp(parser, stream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  t.teardown(() => {
    session.destroy();
    server.close();
  });
  return session;
}

function tunnel(session: http2.ClientHttp2Session): Promise<http2.ClientHttp2Stream> {
  const stream = session.request({ ':method': 'CONNECT', ':authority': 'example.test:80' });
  return new Promise((resolve) => stream.once('response', () => resolve(stream)));
}

async function readAll(stream: http2.ClientHttp2Stream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('latin1');
}

test('node:http answers through the wrapper byte for byte: status line, headers, a body written later', async (t) => {
  const body = JSON.stringify({ pad: 'x'.repeat(100) });
  const session = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-length': Buffer.byteLength(body), connection: 'close' });
    setTimeout(() => res.end(body), 5);
  });
  const stream = await tunnel(session);
  stream.end('GET / HTTP/1.1\r\nhost: example.test\r\n\r\n');
  const response = await readAll(stream);
  t.true(response.startsWith('HTTP/1.1 200 OK\r\n'), JSON.stringify(response.slice(0, 40)));
  t.true(response.endsWith(`\r\n\r\n${body}`));
});

test('keep-alive requests, a chunked body, and a half-close after the last request all get their answers', async (t) => {
  const session = await serve(t, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => res.end(`${req.url}:${Buffer.concat(chunks).toString()}`));
  });
  const stream = await tunnel(session);
  stream.write('POST /a HTTP/1.1\r\nhost: example.test\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n');
  stream.end('GET /b HTTP/1.1\r\nhost: example.test\r\nconnection: close\r\n\r\n');
  const response = await readAll(stream);
  t.regex(response, /\r\n\r\n(?:[0-9a-f]+\r\n)?\/a:abcde/);
  t.regex(response, /\/b:/);
  t.is(response.match(/HTTP\/1\.1 200 OK/g)?.length, 2);
});
