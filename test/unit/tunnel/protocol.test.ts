import test from 'ava';
import type { IncomingHttpHeaders } from 'node:http2';
import { parseTunnelRequest, tunnelRequestHeaders, type TunnelRequest } from '../../../src/tunnel/protocol.ts';
import { parseSubjectAltNames, uriSans } from '../../../src/tunnel/san.ts';

test('request headers round-trip through the gateway parser', (t) => {
  const requests: TunnelRequest[] = [
    { host: 'api.example.com', port: 443, protocol: 'tls', sni: 'api.example.com', originalDst: '93.184.216.34:443', connectionId: 'c1' },
    { host: '2001:db8::1', port: 8443, protocol: 'tcp', originalDst: '[2001:db8::1]:8443' },
    { host: '203.0.113.7', port: 80, protocol: 'http', httpHost: '203.0.113.7' },
  ];
  for (const request of requests) {
    const headers = tunnelRequestHeaders(request) as IncomingHttpHeaders;
    t.deepEqual(parseTunnelRequest(headers), { ok: true, request }, request.host);
  }
  t.is(tunnelRequestHeaders(requests[1]!)[':authority'], '[2001:db8::1]:8443');
});

test('names are normalized as the policy compares them', (t) => {
  const parsed = parseTunnelRequest({ ':method': 'CONNECT', ':authority': 'API.Example.COM.:443', 'egressd-protocol': 'tls', 'egressd-sni': 'Api.Example.com' });
  t.like(parsed, { ok: true, request: { host: 'api.example.com', sni: 'api.example.com' } });
});

const bad: Array<[string, IncomingHttpHeaders, RegExp]> = [
  ['a GET', { ':method': 'GET', ':path': '/', 'egressd-protocol': 'tls' }, /not CONNECT/],
  ['no :authority', { ':method': 'CONNECT', 'egressd-protocol': 'tls' }, /no :authority/],
  ['no port', { ':method': 'CONNECT', ':authority': 'api.example.com', 'egressd-protocol': 'tls' }, /host:port/],
  ['port 0', { ':method': 'CONNECT', ':authority': 'api.example.com:0', 'egressd-protocol': 'tls' }, /host:port/],
  ['port 70000', { ':method': 'CONNECT', ':authority': 'api.example.com:70000', 'egressd-protocol': 'tls' }, /host:port/],
  ['an unbracketed IPv6 address', { ':method': 'CONNECT', ':authority': '2001:db8::1:443', 'egressd-protocol': 'tcp' }, /host:port/],
  ['a bracketed name', { ':method': 'CONNECT', ':authority': '[example.com]:443', 'egressd-protocol': 'tcp' }, /host:port/],
  ['a wildcard', { ':method': 'CONNECT', ':authority': '*.example.com:443', 'egressd-protocol': 'tls' }, /host:port/],
  ['userinfo', { ':method': 'CONNECT', ':authority': 'user@example.com:443', 'egressd-protocol': 'tls' }, /host:port/],
  ['no protocol', { ':method': 'CONNECT', ':authority': 'api.example.com:443' }, /egressd-protocol/],
  ['an unknown protocol', { ':method': 'CONNECT', ':authority': 'api.example.com:443', 'egressd-protocol': 'udp' }, /egressd-protocol "udp"/],
];
for (const [what, headers, problem] of bad) {
  test(`parseTunnelRequest refuses ${what}`, (t) => {
    const parsed = parseTunnelRequest(headers);
    t.false(parsed.ok);
    if (!parsed.ok) t.regex(parsed.problem, problem);
  });
}

test('subject alternative names: plain, several, and Node-escaped values with commas', (t) => {
  t.deepEqual(parseSubjectAltNames('DNS:a.example, URI:spiffe://td/ns/a/sa/b, IP Address:10.0.0.1'), [
    { type: 'DNS', value: 'a.example' },
    { type: 'URI', value: 'spiffe://td/ns/a/sa/b' },
    { type: 'IP Address', value: '10.0.0.1' },
  ]);
  // An attacker-chosen value with ", URI:" inside stays one name (Node quotes it and escapes the comma).
  t.deepEqual(uriSans('URI:"spiffe://td/ns/a/sa/b\\u002c URI:spiffe://td/ns/admin/sa/root"'), ['spiffe://td/ns/a/sa/b, URI:spiffe://td/ns/admin/sa/root']);
  t.deepEqual(uriSans(undefined), []);
  t.deepEqual(uriSans(''), []);
});
