import test from 'ava';
import { headerIs, headerTokens, readHeaderLines } from '../../../src/core/http1-header-lines.ts';

/** Every (name, value) a head's header lines give, or the problem. */
function read(head: string): Array<[string, string]> | string {
  const seen: Array<[string, string]> = [];
  const firstLineEnd = head.indexOf('\r\n');
  const problem = readHeaderLines(head, firstLineEnd < 0 ? head.length : firstLineEnd + 2, (name, value) => {
    seen.push([name, value]);
    return name === 'X-Stop' ? `stopped at ${value}` : undefined;
  });
  return problem ?? seen;
}

test('names keep their case, values lose the blanks around them, empty values stay', (t) => {
  t.deepEqual(read('HTTP/1.1 200 OK\r\nContent-Type:text/plain\r\nx-a: \t spaced out \t\r\nX-Empty:\r\nX-Blank:   '), [
    ['Content-Type', 'text/plain'],
    ['x-a', 'spaced out'],
    ['X-Empty', ''],
    ['X-Blank', ''],
  ]);
  t.deepEqual(read('GET / HTTP/1.0'), []);
});

test('a colon inside a value is part of it', (t) => {
  t.deepEqual(read('GET / HTTP/1.1\r\nHost: [::1]:8080\r\nReferer: http://a.test/x'), [
    ['Host', '[::1]:8080'],
    ['Referer', 'http://a.test/x'],
  ]);
});

for (const [name, head] of Object.entries({
  'a folded line': 'GET / HTTP/1.1\r\nA: b\r\n c',
  'no colon': 'GET / HTTP/1.1\r\nHost a.test',
  'an empty name': 'GET / HTTP/1.1\r\n: a.test',
  'a blank before the colon': 'GET / HTTP/1.1\r\nHost : a.test',
  'a bare LF': 'GET / HTTP/1.1\r\nHost: a.test\nX-Hidden: 1',
  'a bare CR': 'GET / HTTP/1.1\r\nHost: a.test\rX-Hidden: 1',
  'a non-token name': 'GET / HTTP/1.1\r\nHo(st): a.test',
})) {
  test(`invalid: ${name}`, (t) => {
    t.is(read(head), 'invalid header line');
  });
}

test("the visitor's problem ends the reading", (t) => {
  t.is(read('GET / HTTP/1.1\r\nX-Stop: here\r\nX-After: never'), 'stopped at here');
});

test('headerIs compares without case, and only whole names', (t) => {
  t.true(headerIs('Content-Length', 'content-length'));
  t.true(headerIs('HOST', 'host'));
  t.false(headerIs('Hosts', 'host'));
  t.false(headerIs('Hos', 'host'));
  t.false(headerIs('Host ', 'host'));
});

test('headerTokens lists the members of a comma-separated value, lower-cased and trimmed', (t) => {
  t.deepEqual(headerTokens(' Keep-Alive ,CLOSE,\tUpgrade'), ['keep-alive', 'close', 'upgrade']);
  t.deepEqual(headerTokens('gzip, chunked'), ['gzip', 'chunked']);
});
