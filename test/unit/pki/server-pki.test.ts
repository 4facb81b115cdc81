import test from 'ava';
import { once } from 'node:events';
import { createServer, connect } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { createServerPki } from '../../../src/pki/server-pki.ts';

test('the throwaway server certificate names its hosts and verifies against its CA in a real handshake', async (t) => {
  const pki = await createServerPki(['api.example.test', '127.0.0.1']);
  const leaf = new X509Certificate(pki.certPem);
  t.true(leaf.checkIssued(new X509Certificate(pki.caPem)));
  t.true(leaf.checkHost('api.example.test') !== undefined);
  t.true(leaf.checkIP('127.0.0.1') !== undefined);
  t.is(new X509Certificate(pki.caPem).ca, true);

  const server = createServer({ cert: pki.certPem, key: pki.keyPem }, (s) => s.end('hello'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const client = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername: 'api.example.test', ca: pki.caPem });
  await once(client, 'secureConnect');
  t.true(client.authorized);
  client.destroy();
});

test('a client that does not trust the throwaway CA refuses the server', async (t) => {
  const [pki, other] = await Promise.all([createServerPki(['api.example.test']), createServerPki(['api.example.test'])]);
  const server = createServer({ cert: pki.certPem, key: pki.keyPem }, (s) => s.end());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const client = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername: 'api.example.test', ca: other.caPem });
  const [err] = (await once(client, 'error')) as [NodeJS.ErrnoException];
  t.is(err.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
});
