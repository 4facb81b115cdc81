import test from 'ava';
import tls from 'node:tls';
import { EgressdError } from '../../../src/core/errors.ts';
import type { Gateway } from '../../../src/gateway/gateway.ts';
import { GatewayPool } from '../../../src/tunnel/pool.ts';
import { TestCa } from './_pki.ts';
import { GATEWAY_ID, startWorld, type World } from './_world.ts';

/** Bounded wait for a handshake failure to be counted (the client may see its error first). */
async function failuresCounted(gateway: Gateway, reason: string, atLeast = 1): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const metric = await gateway.metrics.handshakeFailures.get();
    const value = metric.values.find((v) => v.labels.reason === reason)?.value ?? 0;
    if (value >= atLeast || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function poolWith(t: { teardown(fn: () => Promise<void>): void }, w: World, secureContext: tls.SecureContext): GatewayPool {
  const pool = new GatewayPool({ addresses: [w.address], secureContext: () => secureContext, gatewayIdentities: [GATEWAY_ID], pingIntervalMs: 0 });
  t.teardown(() => pool.close(0));
  return pool;
}

async function refusedByEveryReplica(t: { is(a: unknown, b: unknown): void; true(v: boolean): void }, pool: GatewayPool): Promise<void> {
  const err = await pool.open({ host: 'api.example.test', port: 443, protocol: 'tls' }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.true(err instanceof EgressdError);
  t.is((err as EgressdError).code, 'EGRESSD_ERR_UPSTREAM');
}

test('no client certificate: the handshake fails, nothing is tunnelled, the failure is counted', async (t) => {
  const w = await startWorld(t);
  const pool = poolWith(t, w, tls.createSecureContext({ ca: w.mesh.rootPem }));
  const downs: string[] = [];
  pool.on('replica-down', (e) => downs.push(e.replica));
  await refusedByEveryReplica(t, pool);
  t.deepEqual(downs, [w.address]);
  t.is(await failuresCounted(w.gateway, 'no_client_certificate'), 1);
  t.is(w.audit.items.length, 0);
});

test('a client certificate from another CA fails the handshake', async (t) => {
  const w = await startWorld(t);
  const foreign = await TestCa.create();
  const pool = poolWith(t, w, foreign.context(foreign.workload('default', 'app'), w.mesh.rootPem));
  await refusedByEveryReplica(t, pool);
  t.is(await failuresCounted(w.gateway, 'untrusted_certificate'), 1);
});

for (const [what, names, reason] of [
  ['no SPIFFE ID (a DNS name only)', { dnsNames: ['app.default.svc'] }, 'no_spiffe_id'],
  ['a SPIFFE ID of another trust domain', { uris: ['spiffe://other.example/ns/default/sa/app'] }, 'foreign_trust_domain'],
  ['a SPIFFE ID that names no workload', { uris: ['spiffe://cluster.local/gateway'] }, 'not_a_workload_id'],
  ['two SPIFFE IDs', { uris: ['spiffe://cluster.local/ns/a/sa/x', 'spiffe://cluster.local/ns/b/sa/y'] }, 'several_spiffe_ids'],
  ['a URI that smuggles a second SPIFFE ID after a comma', { uris: ['spiffe://cluster.local/ns/a/sa/x, URI:spiffe://cluster.local/ns/admin/sa/root'] }, 'not_a_workload_id'],
] as const) {
  test(`a certificate from the trusted CA with ${what} is refused right after the handshake`, async (t) => {
    const w = await startWorld(t);
    const pool = poolWith(t, w, w.mesh.context(w.mesh.issue(names)));
    await refusedByEveryReplica(t, pool);
    t.is(await failuresCounted(w.gateway, reason), 1);
    t.is(w.audit.items.length, 0);
  });
}

for (const [what, alpn] of [
  ['offers only http/1.1', ['http/1.1']],
  ['offers no ALPN at all', undefined],
] as const) {
  test(`a client that ${what} is refused: the gateway speaks HTTP/2 only`, async (t) => {
    const w = await startWorld(t);
    const leaf = w.mesh.workload('default', 'app');
    const socket = tls.connect({
      host: '127.0.0.1',
      port: w.gateway.address().port,
      servername: 'gateway.egressd.test',
      ca: w.mesh.rootPem,
      cert: leaf.certPem,
      key: leaf.keyPem,
      ...(alpn ? { ALPNProtocols: [...alpn] } : {}),
    });
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('close', resolve));
    t.is(await failuresCounted(w.gateway, 'no_h2_alpn'), 1);
  });
}

test('the pool refuses a gateway whose certificate does not carry the expected identity', async (t) => {
  const w = await startWorld(t);
  const leaf = w.mesh.workload('default', 'app');
  const pool = new GatewayPool({
    addresses: [w.address],
    secureContext: () => w.mesh.context(leaf),
    gatewayIdentities: ['spiffe://cluster.local/ns/egressd/sa/someone-else'],
    pingIntervalMs: 0,
  });
  t.teardown(() => pool.close(0));
  const err = await pool.open({ host: 'api.example.test', port: 443, protocol: 'tls' }).catch((e: unknown) => e);
  t.is((err as EgressdError).code, 'EGRESSD_ERR_UPSTREAM');
  t.regex((err as Error).message, /expected spiffe:\/\/cluster\.local\/ns\/egressd\/sa\/someone-else/);
});
