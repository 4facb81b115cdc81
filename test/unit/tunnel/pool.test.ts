import test from 'ava';
import { EgressdError } from '../../../src/core/errors.ts';
import { backoffDelay } from '../../../src/tunnel/backoff.ts';
import type { TunnelResult } from '../../../src/tunnel/pool.ts';
import { startWorld } from '../gateway/_world.ts';

const request = { host: 'api.example.test', port: 443, protocol: 'tls' as const };

function close(result: TunnelResult): string {
  if (result.ok) result.stream.destroy();
  return result.replica;
}

test('backoff grows exponentially with jitter between half and all of its ceiling, up to the maximum', (t) => {
  const options = { initialMs: 100, maxMs: 1000 };
  t.is(backoffDelay(0, options), 0);
  t.is(backoffDelay(1, options, () => 0), 50);
  t.is(backoffDelay(1, options, () => 1), 100);
  t.is(backoffDelay(3, options, () => 1), 400);
  t.is(backoffDelay(5, options, () => 1), 1000);
  t.is(backoffDelay(50, options, () => 0), 500);
});

test('tunnels are spread over the replicas in turn', async (t) => {
  const w = await startWorld(t);
  const second = await w.startGateway({}, 'gw-1');
  const pool = w.pool('default', { addresses: [w.address, second.address] });
  const replicas: string[] = [];
  for (let i = 0; i < 4; i++) replicas.push(close(await pool.open(request)));
  t.deepEqual(replicas, [w.address, second.address, w.address, second.address]);
  t.deepEqual(
    pool.replicas().map((r) => r.state),
    ['up', 'up'],
  );
});

test('a replica that goes away: the next tunnel goes to the other, the failure is reported, and the dead one is skipped while it backs off', async (t) => {
  const w = await startWorld(t);
  const second = await w.startGateway({}, 'gw-1');
  const pool = w.pool('default', { addresses: [w.address, second.address], backoff: { initialMs: 60_000, maxMs: 60_000 } });
  const downs: { replica: string; retryInMs: number }[] = [];
  const failovers: string[] = [];
  pool.on('replica-down', (e) => downs.push(e));
  pool.on('failover', (e) => failovers.push(e.from));
  t.is(close(await pool.open(request)), w.address);
  const inFlight = await pool.open(request);
  t.is(inFlight.replica, second.address);
  const inFlightClosed = inFlight.ok ? new Promise((resolve) => inFlight.stream.once('close', resolve)) : Promise.resolve();

  await second.gateway.close(0);
  await inFlightClosed;
  for (let i = 0; i < 3; i++) t.is(close(await pool.open(request)), w.address);
  t.true(downs.some((d) => d.replica === second.address && d.retryInMs >= 30_000));
  const status = pool.replicas().find((r) => r.address === second.address)!;
  t.is(status.state, 'down');
  t.true(status.failures >= 1);
  t.not(status.lastError, null);
  t.true(failovers.every((f) => f === second.address));
});

test('when every replica is down, open rejects with EGRESSD_ERR_UPSTREAM naming each', async (t) => {
  const w = await startWorld(t);
  const second = await w.startGateway({}, 'gw-1');
  const pool = w.pool('default', { addresses: [w.address, second.address] });
  await w.gateway.close(0);
  await second.gateway.close(0);
  const err = await pool.open(request).catch((e: unknown) => e);
  t.true(err instanceof EgressdError);
  t.is((err as EgressdError).code, 'EGRESSD_ERR_UPSTREAM');
  t.true((err as Error).message.includes(w.address) && (err as Error).message.includes(second.address));
  // Within the backoff nothing is dialled: the answer comes from the pool's own state.
  const again = await pool.open(request).catch((e: unknown) => e);
  t.regex((again as Error).message, /down, retry in \d+ ms/);
});

test('a replica that comes back is used again once its backoff is over', async (t) => {
  const w = await startWorld(t);
  let now = 1_000_000;
  const port = w.gateway.address().port;
  const pool = w.pool('default', { now: () => now, backoff: { initialMs: 1000, maxMs: 1000 } });
  const ups: string[] = [];
  pool.on('replica-up', (e) => ups.push(e.replica));
  t.true((await pool.open(request)).ok);
  await w.gateway.close(0);
  await t.throwsAsync(pool.open(request), { instanceOf: EgressdError });
  const back = await w.startGateway({ listen: { host: '127.0.0.1', port } }, 'gw-0b');
  t.is(back.address, w.address);
  await t.throwsAsync(pool.open(request), { message: /down, retry in/ }, 'still backing off');
  now += 1001;
  const result = await pool.open(request);
  t.true(result.ok);
  t.is(close(result), w.address);
  t.deepEqual(ups, [w.address, w.address]);
});

test('refresh(): new tunnels use new connections, with the credentials of the moment', async (t) => {
  const w = await startWorld(t);
  let leaf = w.mesh.workload('default', 'first');
  const pool = w.pool('default', { secureContext: () => w.mesh.context(leaf) });
  close(await pool.open({ ...request, connectionId: 'before' }));
  leaf = w.mesh.workload('default', 'second');
  close(await pool.open({ ...request, connectionId: 'same-connection' }));
  pool.refresh();
  close(await pool.open({ ...request, connectionId: 'after' }));
  t.is((await w.audit.find((r) => r.connection_id === 'before')).identity, 'spiffe://cluster.local/ns/default/sa/first');
  t.is((await w.audit.find((r) => r.connection_id === 'same-connection')).identity, 'spiffe://cluster.local/ns/default/sa/first');
  t.is((await w.audit.find((r) => r.connection_id === 'after')).identity, 'spiffe://cluster.local/ns/default/sa/second');
});

test('an aborted open cancels the CONNECT', async (t) => {
  const w = await startWorld(t);
  const pool = w.pool();
  const controller = new AbortController();
  controller.abort(new Error('application went away'));
  await t.throwsAsync(pool.open(request, { signal: controller.signal }), { message: 'application went away' });
});

test('a closed pool opens nothing', async (t) => {
  const w = await startWorld(t);
  const pool = w.pool();
  await pool.close(0);
  await t.throwsAsync(pool.open(request), { message: /closed/ });
});

test('setAddresses: a replica still listed keeps its connection, a new one joins the rotation, a removed one leaves it with its open tunnels finishing', async (t) => {
  const w = await startWorld(t);
  const second = await w.startGateway({}, 'gw-1');
  const pool = w.pool('default', { addresses: [w.address] });
  const open = await pool.open({ ...request, protocol: 'tcp', connectionId: 'kept' });
  t.true(open.ok);
  pool.setAddresses([second.address, w.address]);
  t.deepEqual(
    pool.replicas().map((r) => [r.address, r.state]),
    [
      [second.address, 'idle'],
      [w.address, 'up'],
    ],
  );
  pool.setAddresses([{ address: second.address, servername: 'gateway.egressd.test' }]);
  t.deepEqual(
    pool.replicas().map((r) => r.address),
    [second.address],
  );
  for (let i = 0; i < 2; i++) t.is(close(await pool.open(request)), second.address);
  // The tunnel opened on the removed replica was not cut: it ends when its two sides end, with no error.
  if (open.ok) {
    open.stream.end();
    open.stream.resume();
  }
  t.like(await w.audit.find((r) => r.connection_id === 'kept'), { decision: 'allow', error: null });
  t.throws(() => pool.setAddresses([]), { code: 'EGRESSD_ERR_USAGE' } as never);
});

test('a tunnel that had to move on says so: the replicas tried first, each with why, travel with the result for its audit record', async (t) => {
  const w = await startWorld(t);
  // A port nothing listens on: the connect is refused at once.
  const { createServer } = await import('node:net');
  const probe = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => probe.once('listening', resolve));
  const deadPort = (probe.address() as { port: number }).port;
  await new Promise((resolve) => probe.close(resolve));
  const dead = `127.0.0.1:${deadPort}`;
  const pool = w.pool('default', { addresses: [dead, w.address], backoff: { initialMs: 60_000, maxMs: 60_000 } });
  const first = await pool.open(request);
  t.is(close(first), w.address);
  t.is(first.failovers?.length, 1);
  t.regex(first.failovers?.[0] ?? '', new RegExp(`^${dead.replace(/\./g, '\\.')}: .*ECONNREFUSED`));
  // The dead replica now backs off: the next tunnel goes straight to the live one and carries no failover.
  const second = await pool.open(request);
  t.is(close(second), w.address);
  t.is(second.failovers, undefined);
});
