import test from 'ava';
import { auditPath, hostOf, MAX_HTTP_HEAD, parseHttpRequestHead, type RequestBody } from '../../../src/agent/http-request-head.ts';

const REQUESTS: Record<string, { text: string; expect: { method: string; target: string; host: string | null; targetHost: string | null; body: RequestBody } }> = {
  'curl GET': {
    text: 'GET /v1/items?x=1 HTTP/1.1\r\nHost: api.example.test\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n',
    expect: { method: 'GET', target: '/v1/items?x=1', host: 'api.example.test', targetHost: null, body: { kind: 'none' } },
  },
  'POST with a port in Host and a body after the head': {
    text: 'POST /submit HTTP/1.1\r\nhost: API.example.test:8080\r\nContent-Length: 5\r\n\r\nhello',
    expect: { method: 'POST', target: '/submit', host: 'API.example.test', targetHost: null, body: { kind: 'length', bytes: 5 } },
  },
  'absolute-form target': {
    text: 'GET http://api.example.test:80/p HTTP/1.1\r\nHost: api.example.test\r\n\r\n',
    expect: { method: 'GET', target: 'http://api.example.test:80/p', host: 'api.example.test', targetHost: 'api.example.test', body: { kind: 'none' } },
  },
  'HTTP/1.0 without Host': {
    text: 'GET / HTTP/1.0\r\n\r\n',
    expect: { method: 'GET', target: '/', host: null, targetHost: null, body: { kind: 'none' } },
  },
  'IPv6 literal in Host': {
    text: 'OPTIONS * HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n\r\n',
    expect: { method: 'OPTIONS', target: '*', host: '2001:db8::1', targetHost: null, body: { kind: 'none' } },
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
