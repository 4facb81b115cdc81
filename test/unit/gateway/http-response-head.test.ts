import test from 'ava';
import { MAX_RESPONSE_HEAD, parseHttpResponseHead } from '../../../src/gateway/http-response-head.ts';

const CASES: Array<[string, string, string, object]> = [
  ['a keep-alive answer with a length', 'GET', 'HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: keep-alive\r\n\r\n', { code: 200, body: { kind: 'length', bytes: 12 }, close: false }],
  ['chunked', 'GET', 'HTTP/1.1 201 Created\r\ntransfer-encoding: gzip, chunked\r\n\r\n', { code: 201, body: { kind: 'chunked' }, close: false }],
  ['no length: until the connection closes', 'GET', 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n', { code: 200, body: { kind: 'until-close' }, close: true }],
  ['a coding other than chunked last: until close', 'GET', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n', { code: 200, body: { kind: 'until-close' }, close: true }],
  ['HEAD: no body whatever the length says', 'HEAD', 'HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n', { code: 200, body: { kind: 'none' }, close: false }],
  ['204 and 304 have no body', 'GET', 'HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n', { code: 304, body: { kind: 'none' } }],
  ['100 Continue', 'POST', 'HTTP/1.1 100 Continue\r\n\r\n', { code: 100, body: { kind: 'none' } }],
  ['Connection: close', 'GET', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n', { code: 200, body: { kind: 'none' }, close: true }],
  ['HTTP/1.0 closes unless kept alive', 'GET', 'HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n', { close: true }],
  ['HTTP/1.0 kept alive', 'GET', 'HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: Keep-Alive\r\n\r\n', { close: false }],
  ['a status line without a reason', 'GET', 'HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n', { code: 404 }],
];

for (const [name, method, text, expected] of CASES) {
  test(`${name}: every prefix is incomplete, the head parses`, (t) => {
    const bytes = Buffer.from(`${text}body`);
    for (let n = 0; n < text.length; n++) t.is(parseHttpResponseHead(bytes.subarray(0, n), method).status, 'incomplete');
    t.like(parseHttpResponseHead(bytes, method), { status: 'complete', length: text.length, ...expected });
  });
}

for (const [name, text] of [
  ['both framings', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n'],
  ['lengths that disagree', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n'],
  ['a length that is not a number', 'HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n'],
  ['a folded header', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n'],
  ['HTTP/2 in the status line', 'HTTP/2 200\r\n\r\n'],
  ['not HTTP at all', 'SSH-2.0-OpenSSH\r\n\r\n'],
]) {
  test(`malformed: ${name}`, (t) => {
    t.is(parseHttpResponseHead(Buffer.from(text), 'GET').status, 'malformed');
  });
}

test('a head that never ends is refused at the size limit', (t) => {
  const endless = Buffer.from(`HTTP/1.1 200 OK\r\nX-Pad: ${'a'.repeat(MAX_RESPONSE_HEAD)}`);
  t.is(parseHttpResponseHead(endless.subarray(0, MAX_RESPONSE_HEAD - 1), 'GET').status, 'incomplete');
  t.is(parseHttpResponseHead(endless, 'GET').status, 'malformed');
});
