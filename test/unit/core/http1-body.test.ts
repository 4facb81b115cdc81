import test from 'ava';
import http from 'node:http';
import net from 'node:net';
import { BodyReader, type BodyFraming } from '../../../src/core/http1-body.ts';

/** Feeds `bytes` `size` at a time; returns how many bytes the body took, whether it ended, or the error. */
function readIn(framing: BodyFraming, bytes: Buffer, size: number): { used: number; done: boolean } | { error: string } {
  const reader = new BodyReader(framing);
  let used = 0;
  for (let i = 0; i < bytes.length; i += size) {
    const step = reader.read(bytes.subarray(i, Math.min(i + size, bytes.length)));
    if ('error' in step) return step;
    used += step.used;
    if (step.done) return { used, done: true };
  }
  return { used, done: reader.done };
}

/** A chunked body as Node's own server frames it (a write per chunk, then trailers), the bytes as they came off the socket. */
async function nodeChunkedBody(): Promise<Buffer> {
  const server = http.createServer((_req, res) => {
    res.setHeader('Trailer', 'X-Checksum');
    res.write('first');
    res.write('a longer second chunk, '.repeat(20));
    res.addTrailers({ 'X-Checksum': 'abc' });
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    socket.end('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const chunks: Buffer[] = [];
    for await (const chunk of socket) chunks.push(chunk as Buffer);
    const response = Buffer.concat(chunks);
    return response.subarray(response.indexOf('\r\n\r\n') + 4);
  } finally {
    server.close();
  }
}

test('a chunked body framed by Node, with trailers, ends exactly where it ends, fed 1 byte to all at once', async (t) => {
  const body = await nodeChunkedBody();
  const next = Buffer.from('HTTP/1.1 200 OK\r\n');
  for (const size of [1, 2, 3, 7, 64, body.length + next.length]) {
    t.deepEqual(readIn({ kind: 'chunked' }, Buffer.concat([body, next]), size), { used: body.length, done: true }, `fed ${size} at a time`);
  }
});

test('a length-framed body ends at its length; none takes nothing; until-close takes everything', (t) => {
  const bytes = Buffer.from('0123456789GET / HTTP/1.1');
  for (const size of [1, 4, bytes.length]) t.deepEqual(readIn({ kind: 'length', bytes: 10 }, bytes, size), { used: 10, done: true });
  t.true(new BodyReader({ kind: 'none' }).done);
  t.true(new BodyReader({ kind: 'length', bytes: 0 }).done);
  const untilClose = new BodyReader({ kind: 'until-close' });
  t.deepEqual(untilClose.read(bytes), { used: bytes.length, done: false });
  t.true(untilClose.untilClose);
});

for (const [name, text, problem] of [
  ['a chunk size that is not hex', '5x\r\nhello\r\n0\r\n\r\n', /invalid chunk size/],
  ['chunk data longer than its size', '3\r\nhello\r\n0\r\n\r\n', /not followed by CRLF/],
  ['a bare LF after the size', '5\nhello\r\n0\r\n\r\n', /not ended by CRLF/],
  ['a size line that never ends', `5${' '.repeat(5000)}`, /longer than 4096/],
] as const) {
  test(`chunked framing refused: ${name}`, (t) => {
    for (const size of [1, 1000]) {
      const result = readIn({ kind: 'chunked' }, Buffer.from(text), size);
      t.true('error' in result && problem.test(result.error), JSON.stringify(result));
    }
  });
}
