import test from 'ava';
import { formatHostPort, normalizeHost, parseHostPort } from '../../../src/core/net.ts';

const hosts: Array<[string, string, string]> = [
  ['lower-cases names', 'API.Example.COM', 'api.example.com'],
  ['drops one trailing dot', 'api.example.com.', 'api.example.com'],
  ['keeps a wildcard prefix', '*.Example.com', '*.example.com'],
  ['turns IDN labels into punycode', 'bücher.example', 'xn--bcher-kva.example'],
  ['keeps IPv4 literals', '10.0.0.1', '10.0.0.1'],
  ['unbrackets IPv6 literals', '[2001:DB8::1]', '2001:db8::1'],
];
for (const [description, input, expected] of hosts) {
  test(`normalizeHost ${description}`, (t) => t.is(normalizeHost(input), expected));
}

test('parseHostPort reads names, IPv4 and bracketed IPv6', (t) => {
  t.deepEqual(parseHostPort('api.example.com:443'), { host: 'api.example.com', port: 443 });
  t.deepEqual(parseHostPort('[::1]:15001'), { host: '::1', port: 15001 });
  t.deepEqual(parseHostPort('example.com', 80), { host: 'example.com', port: 80 });
});

test('parseHostPort refuses a missing or out-of-range port with a usage error', (t) => {
  for (const bad of ['example.com', 'example.com:0', 'example.com:70000', ':443', 'a:b']) {
    t.is(t.throws(() => parseHostPort(bad))?.name, 'EgressdError', bad);
  }
});

test('formatHostPort brackets IPv6 only', (t) => {
  t.is(formatHostPort('::1', 443), '[::1]:443');
  t.is(formatHostPort('10.1.2.3', 80), '10.1.2.3:80');
});
