import test from 'ava';
import { lookup } from 'node:dns/promises';
import { createResolver } from '../../../src/agent/resolve.ts';
import { parseResolveOverride } from '../../../src/core/resolve-override.ts';

// Only names the hosts file answers: tests send nothing to a DNS server.
test('overrides apply to their host and port only; IP literals resolve to themselves; other names go to the system resolver', async (t) => {
  const resolve = createResolver([parseResolveOverride('localhost:443:127.0.0.2'), parseResolveOverride('localhost:443:[::1]')]);
  t.deepEqual(await resolve('LOCALHOST', 443), ['127.0.0.2', '::1']);
  t.deepEqual(await resolve('10.1.2.3', 443), ['10.1.2.3']);
  t.deepEqual(await resolve('localhost', 80), (await lookup('localhost', { all: true, verbatim: true })).map((a) => a.address));
});

test('an entry without a port answers the name on every port', async (t) => {
  const resolve = createResolver([parseResolveOverride('localhost:127.0.0.3')]);
  t.deepEqual(await resolve('localhost', 80), ['127.0.0.3']);
  t.deepEqual(await resolve('localhost', 8443), ['127.0.0.3']);
});
