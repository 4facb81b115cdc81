import test from 'ava';
import type { BodyFraming } from '../../../src/core/http1-body.ts';
import { auditPath, hostOf, MAX_HTTP_HEAD, parseHttpRequestHead } from '../../../src/core/http1-request-head.ts';

type Expected = { method: string; version: '1.0' | '1.1'; target: string; host: string | null; targetHost: string | null; headers: Array<[string, string]>; body: BodyFraming; upgrade: boolean };

const REQUESTS: Record<string, { text: string; expect: Expected }> = {
  'curl GET': {
    text: 'GET /v1/items?x=1 HTTP/1.1\r\nHost: api.example.test\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n',
    expect: {
      method: 'GET', version: '1.1', target: '/v1/items?x=1', host: 'api.example.test', targetHost: null,
      headers: [['Host', 'api.example.test'], ['User-Agent', 'curl/7.88.1'], ['Accept', '*/*']], body: { kind: 'none' }, upgrade: false,
    },
  },
  'POST with a port in Host and a body after the head': {
    text: 'POST /submit HTTP/1.1\r\nhost: API.example.test:8080\r\nContent-Length: 5\r\n\r\nhello',
    expect: {
      method: 'POST', version: '1.1', target: '/submit', host: 'API.example.test', targetHost: null,
      headers: [['host', 'API.example.test:8080'], ['Content-Length', '5']], body: { kind: 'length', bytes: 5 }, upgrade: false,
    },
  },
  'absolute-form target': {
    text: 'GET http://api.example.test:80/p HTTP/1.1\r\nHost: api.example.test\r\n\r\n',
    expect: {
      method: 'GET', version: '1.1', target: 'http://api.example.test:80/p', host: 'api.example.test', targetHost: 'api.example.test',
      headers: [['Host', 'api.example.test']], body: { kind: 'none' }, upgrade: false,
    },
  },
  'HTTP/1.0 without Host': {
    text: 'GET / HTTP/1.0\r\n\r\n',
    expect: { method: 'GET', version: '1.0', target: '/', host: null, targetHost: null, headers: [], body: { kind: 'none' }, upgrade: false },
  },
  'IPv6 literal in Host': {
    text: 'OPTIONS * HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n\r\n',
    expect: {
      method: 'OPTIONS', version: '1.1', target: '*', host: '2001:db8::1', targetHost: null,
      headers: [['Host', '[2001:db8::1]:8080']], body: { kind: 'none' }, upgrade: false,
    },
  },
  'a WebSocket upgrade with a chunked body': {
    text: 'GET /ws HTTP/1.1\r\nHost: api.example.test\r\nConnection: Upgrade\r\nUpgrade:  websocket \r\nTransfer-Encoding: chunked\r\n\r\n',
    expect: {
      method: 'GET', version: '1.1', target: '/ws', host: 'api.example.test', targetHost: null,
      headers: [['Host', 'api.example.test'], ['Connection', 'Upgrade'], ['Upgrade', 'websocket'], ['Transfer-Encoding', 'chunked']], body: { kind: 'chunked' }, upgrade: true,
    },
  },
};

for (const [name, { text, expect }] of Object.entries(REQUESTS)) {
  test(`${name}: every prefix of the head is incomplete, the whole head parses`, (t) => {
    const bytes = Buffer.from(text);
    const headLength = text.indexOf('\r\n\r\n') + 4;
    for (let n = 0; n < headLength; n++) {
      const result = parseHttpRequestHead(bytes.subarray(0, n));
      if (result.status !== 'incomplete') t.fail(`prefix of ${n} bytes: ${JSON.stringify(result)}`);
    }
    t.deepEqual(parseHttpRequestHead(bytes), { status: 'complete', ...expect, length: headLength });
  });
}

const NOT_HTTP: Record<string, string> = {
  'a TLS record': '\x16\x03\x01\x02\x00',
  'an SSH banner': 'SSH-2.0-OpenSSH_9.0\r\n',
  'an unknown method': 'BREW /pot HTTP/1.1\r\n\r\n',
  'a lower-case method': 'get / HTTP/1.1\r\n\r\n',
  'HTTP/2 prior knowledge': 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
};
for (const [name, text] of Object.entries(NOT_HTTP)) {
  test(`not HTTP: ${name}`, (t) => {
    t.is(parseHttpRequestHead(Buffer.from(text, 'latin1')).status, 'not_http');
  });
}

const MALFORMED: Record<string, string> = {
  'two Host headers': 'GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n',
  'a folded header line': 'GET / HTTP/1.1\r\nHost: a.test\r\n X-Folded: yes\r\n\r\n',
  'a header without a colon': 'GET / HTTP/1.1\r\nHost a.test\r\n\r\n',
  'a space before the colon': 'GET / HTTP/1.1\r\nHost : a.test\r\n\r\n',
  'HTTP/2 in the request line': 'GET / HTTP/2\r\nHost: a.test\r\n\r\n',
  'a Host with a path': 'GET / HTTP/1.1\r\nHost: a.test/evil\r\n\r\n',
  'a Host with a port out of range': 'GET / HTTP/1.1\r\nHost: a.test:99999\r\n\r\n',
  'a target with an invalid authority': 'GET http://a b/ HTTP/1.1\r\nHost: a.test\r\n\r\n',
  'an empty target': 'GET  HTTP/1.1\r\nHost: a.test\r\n\r\n',
  'a tab inside the target': 'GET /a\tb HTTP/1.1\r\nHost: a.test\r\n\r\n',
  'text after the version': 'GET / HTTP/1.1x\r\nHost: a.test\r\n\r\n',
  'a bare LF inside a header line': 'GET / HTTP/1.1\r\nHost: a.test\nX-Hidden: 1\r\n\r\n',
  'a bare CR inside a header line': 'GET / HTTP/1.1\r\nHost: a.test\rX-Hidden: 1\r\n\r\n',
  'a header line that is only a colon': 'GET / HTTP/1.1\r\n: a.test\r\n\r\n',
};
for (const [name, text] of Object.entries(MALFORMED)) {
  test(`malformed: ${name}`, (t) => {
    t.is(parseHttpRequestHead(Buffer.from(text)).status, 'malformed');
  });
}

test('a head that never ends is malformed once it reaches the size limit, not buffered forever', (t) => {
  const endless = Buffer.from(`GET / HTTP/1.1\r\nX-Pad: ${'a'.repeat(MAX_HTTP_HEAD)}`);
  t.is(parseHttpRequestHead(endless.subarray(0, MAX_HTTP_HEAD - 1)).status, 'incomplete');
  t.is(parseHttpRequestHead(endless).status, 'malformed');
});

test('hostOf takes the host out of Host header values', (t) => {
  t.is(hostOf('api.example.test:443'), 'api.example.test');
  t.is(hostOf('[::1]:80'), '::1');
  t.is(hostOf('user@host'), undefined);
  t.is(hostOf(''), undefined);
});

test('auditPath keeps the path and drops the query, which may carry credentials', (t) => {
  t.is(auditPath('/v1/items?token=secret'), '/v1/items');
  t.is(auditPath('http://api.example.test/v1#frag'), '/v1');
  t.is(auditPath('http://api.example.test?q=1'), '/');
  t.is(auditPath('*'), '*');
});
