import test from 'ava';
import { createRequire } from 'node:module';
import { parseHttpRequestHead } from '../../../../src/core/http1-request-head.ts';
import { RequestHostCheck } from '../../../../src/core/http1-request-host.ts';
import { guardFor } from '../../../../src/agent/native-relay.ts';

/** The guard of the relay thread (src/agent/native/http-request-guard.c), through the addon's entry for it. */
interface Verdict {
  refused?: string;
  /** What goes on to the destination. */
  sent: Buffer;
}
const addon = createRequire(import.meta.url)('#relay-addon') as {
  guardNew(host: string | null, alias?: string): object;
  guardFeed(guard: object, bytes: Buffer): Verdict;
  guardAnswer(guard: object, bytes: Buffer): Verdict;
};

class HttpRequestGuard {
  readonly #guard: object;
  constructor(host: string | null, alias?: string) {
    this.#guard = alias === undefined ? addon.guardNew(host) : addon.guardNew(host, alias);
  }
  /** Why the stream is cut, or undefined. */
  feed(bytes: Buffer): string | undefined {
    return addon.guardFeed(this.#guard, bytes).refused;
  }
  verdict(text: string): Verdict {
    return addon.guardFeed(this.#guard, Buffer.from(text, 'latin1'));
  }
  answer(text: string): Verdict {
    return addon.guardAnswer(this.#guard, Buffer.from(text, 'latin1'));
  }
}

const get = (host: string, path = '/'): string => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n`;

/** Feeds `text` in pieces of `size` bytes; the first refusal, or undefined. */
function feedAll(guard: HttpRequestGuard, text: string, size: number): string | undefined {
  const bytes = Buffer.from(text, 'latin1');
  for (let i = 0; i < bytes.length; i += size) {
    const why = guard.feed(bytes.subarray(i, i + size));
    if (why !== undefined) return why;
  }
  return undefined;
}

const SAME_HOST =
  get('api.example.test', '/a') +
  'POST /upload HTTP/1.1\r\nHost: API.Example.Test:80\r\nContent-Length: 11\r\n\r\nhello world' +
  'PUT /chunks HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n' +
  'GET http://api.example.test/abs HTTP/1.1\r\nHost: api.example.test\r\n\r\n' +
  get('api.example.test.', '/trailing-dot');

for (const size of [1, 2, 7, 64, 100_000]) {
  test(`requests for the connection's host pass, bodies skipped by their framing, fed ${size} bytes at a time`, (t) => {
    t.is(feedAll(new HttpRequestGuard('api.example.test'), SAME_HOST, size), undefined);
  });

  test(`a later request for another host is refused wherever the bytes split (${size} at a time)`, (t) => {
    const why = feedAll(new HttpRequestGuard('api.example.test'), SAME_HOST + get('evil.example.test', '/steal'), size);
    t.is(why, 'request 6 names host "evil.example.test", not "api.example.test" that the connection was allowed for');
  });
}

test('a body that looks like a request is skipped, not read as one', (t) => {
  const body = get('evil.example.test');
  const text = `POST /p HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: ${body.length}\r\n\r\n${body}` + get('api.example.test');
  t.is(feedAll(new HttpRequestGuard('api.example.test'), text, 3), undefined);
});

test('an absolute-form target naming another host is refused even with the right Host header', (t) => {
  const why = new HttpRequestGuard('api.example.test').feed(Buffer.from(get('api.example.test') + 'GET http://evil.example.test/ HTTP/1.1\r\nHost: api.example.test\r\n\r\n'));
  t.regex(why ?? '', /^request 2 names host "evil\.example\.test"/);
});

test('a request without a Host on a connection allowed for a host is refused; HTTP/1.0 without Host throughout passes', (t) => {
  t.regex(new HttpRequestGuard('api.example.test').feed(Buffer.from(get('api.example.test') + 'GET / HTTP/1.0\r\n\r\n')) ?? '', /^request 2 names no host/);
  t.is(new HttpRequestGuard(null).feed(Buffer.from('GET / HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n')), undefined);
  t.regex(new HttpRequestGuard(null).feed(Buffer.from('GET / HTTP/1.0\r\n\r\n' + get('evil.example.test'))) ?? '', /^request 2 names host "evil\.example\.test", not none/);
});

const SMUGGLING: Record<string, string> = {
  'Content-Length and Transfer-Encoding together': 'POST / HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'a coding other than chunked': 'POST / HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: gzip, chunked, identity\r\n\r\n',
  'two Content-Lengths that disagree': 'POST / HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 1\r\nContent-Length: 40\r\n\r\nx',
  'a negative Content-Length': 'POST / HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: -1\r\n\r\n',
  'a chunk size that is not hex': 'POST / HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
  'chunk data longer than its size': 'POST / HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n',
  'bytes that are not a request where the next request should start': `${get('api.example.test')}\x16\x03\x01\x00\x10`,
};
for (const [name, text] of Object.entries(SMUGGLING)) {
  test(`cut, not guessed: ${name}`, (t) => {
    t.not(new HttpRequestGuard('api.example.test').feed(Buffer.from(text, 'latin1')), undefined);
  });
}

test('after an Upgrade the client waits for the answer: a 101 makes the connection another protocol, no longer read', (t) => {
  const ws = 'GET /ws HTTP/1.1\r\nHost: api.example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n';
  const guard = new HttpRequestGuard('api.example.test');
  const frames = '\x81\x05hello' + get('other.example.test');
  t.deepEqual(guard.verdict(ws + frames), { sent: Buffer.from(ws) });
  t.deepEqual(guard.answer('HTTP/1.1 10'), { sent: Buffer.alloc(0) });
  t.deepEqual(guard.answer('1 Switching Protocols\r\n\r\n'), { sent: Buffer.from(frames, 'latin1') });
  t.deepEqual(guard.verdict(get('another.example.test')), { sent: Buffer.from(get('another.example.test')) });
});

test('an Upgrade or CONNECT the server does not agree to leaves the connection HTTP: what waited is read as requests', (t) => {
  const upgrade = 'GET / HTTP/1.1\r\nHost: api.example.test\r\nUpgrade: foo\r\n\r\n';
  const refusedUpgrade = new HttpRequestGuard('api.example.test');
  t.deepEqual(refusedUpgrade.verdict(upgrade + get('evil.example.test')), { sent: Buffer.from(upgrade) });
  t.deepEqual(refusedUpgrade.answer('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'), {
    refused: 'request 2 names host "evil.example.test", not "api.example.test" that the connection was allowed for',
    sent: Buffer.alloc(0),
  });
  const connect = 'CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test\r\n\r\n';
  const refusedConnect = new HttpRequestGuard('api.example.test');
  t.deepEqual(refusedConnect.verdict(connect + get('api.example.test')), { sent: Buffer.from(connect) });
  t.deepEqual(refusedConnect.answer('HTTP/1.1 407 Proxy Authentication Required\r\n\r\n'), { sent: Buffer.from(get('api.example.test')) });
  const agreed = new HttpRequestGuard('api.example.test');
  t.deepEqual(agreed.verdict(connect + '\x16\x03\x01'), { sent: Buffer.from(connect) });
  t.deepEqual(agreed.answer('HTTP/1.1 200 Connection Established\r\n\r\n'), { sent: Buffer.from('\x16\x03\x01', 'latin1') });
});

test('nothing of an unfinished head goes on: a server that takes bare LF never sees a request the guard has not read', (t) => {
  const guard = new HttpRequestGuard('api.example.test');
  const bareLf = 'GET / HTTP/1.1\nHost: evil.example.test\n\n';
  t.deepEqual(guard.verdict(get('api.example.test') + bareLf), { sent: Buffer.from(get('api.example.test')) });
  const split = new HttpRequestGuard('api.example.test');
  const head = get('api.example.test', '/split');
  t.deepEqual(split.verdict(head.slice(0, 20)), { sent: Buffer.alloc(0) });
  t.deepEqual(split.verdict(head.slice(20) + 'GET /n'), { sent: Buffer.from(head) });
  t.deepEqual(new HttpRequestGuard('api.example.test').verdict('GET /0.9-style-request\r\n'), { sent: Buffer.alloc(0) });
});

test('no name matches a connection host the agent could not normalize, a backslash authority and HTTP/1.0 chunked are cut', (t) => {
  t.regex(new HttpRequestGuard('').feed(Buffer.from('GET / HTTP/1.1\r\nHost: .\r\n\r\n')) ?? '', /names host "\."/);
  t.regex(new HttpRequestGuard('api.example.test').feed(Buffer.from('GET http://evil.example.test\\@api.example.test/ HTTP/1.1\r\nHost: api.example.test\r\n\r\n')) ?? '', /backslash/);
  t.regex(new HttpRequestGuard('api.example.test').feed(Buffer.from('POST / HTTP/1.0\r\nHost: api.example.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')) ?? '', /HTTP\/1\.0/);
});

test('a head that never ends is cut at the size limit instead of buffered forever', (t) => {
  const guard = new HttpRequestGuard('api.example.test');
  t.is(guard.feed(Buffer.from(get('api.example.test') + 'GET / HTTP/1.1\r\nX-Pad: ')), undefined);
  let why: string | undefined;
  for (let i = 0; i < 20 && why === undefined; i++) why = guard.feed(Buffer.alloc(1024, 'a'));
  t.regex(why ?? '', /^request 2 .*longer than 16384 bytes/);
});

/**
 * The sniffer reads a connection's first head with the TypeScript parser, the guard every head
 * with its own: they must not disagree on what a head is. Each head below, and each with one
 * hostile byte put in at each position, is either read by both (the guard letting it through for
 * the host the parser found) or refused by the guard; the guard may be stricter, never looser.
 */
const BASE_HEADS = [
  get('api.example.test', '/a?b=c'),
  'POST http://user@API.example.test:8080/x HTTP/1.1\r\nHost: api.example.test:8080\r\nContent-Length: 0\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: [2001:db8::1]:80\r\nTransfer-Encoding: chunked\r\n\r\n',
  'OPTIONS * HTTP/1.1\r\nHost: 192.0.2.1\r\nUpgrade: h2c\r\n\r\n',
];
const HOSTILE = [' ', '\t', '\r', '\n', ':', '@', '[', ']', '/', '\0', '\x0b', '\xa0', '\xff', 'Host: x\r\n'];

test('the guard reads heads as the sniffer does, or more strictly, with a hostile byte anywhere', (t) => {
  const disagreements: string[] = [];
  let checked = 0;
  for (const base of BASE_HEADS) {
    for (let at = 0; at <= base.length; at++) {
      for (const byte of HOSTILE) {
        const bytes = Buffer.from(base.slice(0, at) + byte + base.slice(at), 'latin1');
        const head = parseHttpRequestHead(bytes);
        const host = head.status === 'complete' ? (head.host ?? head.targetHost) : null;
        // What follows a complete head is the next request's, which the parser has not read.
        const guard = guardFor(host);
        const why = new HttpRequestGuard(guard.host, guard.alias).feed(head.status === 'complete' ? bytes.subarray(0, head.length) : bytes);
        // A head whose Host and target disagree is refused by both checks, the TypeScript one being the gateway's.
        const passes = head.status === 'complete' && new RequestHostCheck(host).other(head.host, head.targetHost) === undefined;
        // Stricter by design: only an exact `chunked`, and names of ASCII compared by case and a trailing dot alone.
        const stricter = /[\x0b\xa0\xff]/.test(byte);
        if ((passes && why !== undefined && !stricter) || (!passes && head.status !== 'incomplete' && why === undefined)) {
          disagreements.push(`${JSON.stringify(bytes.toString('latin1'))}: parser ${head.status}, guard ${why ?? 'passes'}`);
        }
        checked++;
      }
    }
  }
  t.deepEqual(disagreements, []);
  t.true(checked > 1000);
});

test('every prefix of a real curl request is incomplete, never refused, and the whole passes', (t) => {
  const curl = Buffer.from(get('api.example.test'));
  for (let n = 1; n < curl.length; n++) t.is(new HttpRequestGuard('api.example.test').feed(curl.subarray(0, n)), undefined, `${n} bytes`);
});
