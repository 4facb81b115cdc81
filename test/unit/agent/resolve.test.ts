import test from 'ava';
import { lookup } from 'node:dns/promises';
import { createResolver, parseResolveEntry } from '../../../src/agent/resolve.ts';

test('--resolve entries like curl\'s: host:port:address, IPv6 with or without brackets', (t) => {
  t.deepEqual(parseResolveEntry('API.example.test:443:127.0.0.1'), { host: 'api.example.test', port: 443, address: '127.0.0.1' });
  t.deepEqual(parseResolveEntry('api.example.test:80:[::1]'), { host: 'api.example.test', port: 80, address: '::1' });
  t.deepEqual(parseResolveEntry('api.example.test:80:::1'), { host: 'api.example.test', port: 80, address: '::1' });
});

for (const bad of ['api.example.test:443', 'api.example.test:0:127.0.0.1', 'api.example.test:443:not-an-ip', ':443:127.0.0.1']) {
  test(`--resolve "${bad}" is refused`, (t) => {
    t.throws(() => parseResolveEntry(bad), { code: 'EGRESSD_ERR_USAGE', message: /expected host:port:address/ } as never);
  });
}

// Only names the hosts file answers: tests send nothing to a DNS server.
test('overrides apply to their host and port only; IP literals resolve to themselves; other names go to the system resolver', async (t) => {
  const resolve = createResolver([parseResolveEntry('localhost:443:127.0.0.2'), parseResolveEntry('localhost:443:[::1]')]);
  t.deepEqual(await resolve('LOCALHOST', 443), ['127.0.0.2', '::1']);
  t.deepEqual(await resolve('10.1.2.3', 443), ['10.1.2.3']);
  t.deepEqual(await resolve('localhost', 80), (await lookup('localhost', { all: true, verbatim: true })).map((a) => a.address));
});
