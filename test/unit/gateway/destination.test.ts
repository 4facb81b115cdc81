import test from 'ava';
import net from 'node:net';
import { EgressdError } from '../../../src/core/errors.ts';
import { parseCidr } from '../../../src/core/ip-ranges.ts';
import { parseResolveOverride } from '../../../src/core/resolve-override.ts';
import { dialFirst, planDial, resolverWithOverrides, systemResolver } from '../../../src/gateway/destination.ts';

const resolver = resolverWithOverrides(
  [
    { host: 'mixed.example.test', address: '10.0.0.1' },
    { host: 'mixed.example.test', address: '93.184.216.34' },
    { host: 'metadata.example.test', address: '169.254.169.254' },
    { host: 'metadata.example.test', port: 443, address: '::ffff:169.254.169.254' },
  ],
  systemResolver,
);
const cidrs = (...texts: string[]) => texts.map((text) => parseCidr(text)!);

test('a name resolving to public and private addresses: only the public ones are dialled', async (t) => {
  const plan = await planDial('mixed.example.test', 443, undefined, [], resolver);
  t.deepEqual(plan, { ok: true, targets: [{ address: '93.184.216.34', port: 443 }], refused: [{ address: '10.0.0.1', range: 'private' }] });
});

test('every address forbidden, in either form: forbidden_address naming each', async (t) => {
  const plan = await planDial('metadata.example.test', 80, undefined, [], resolver);
  t.like(plan, { ok: false, reason: 'forbidden_address' });
  if (!plan.ok) t.is(plan.detail, 'metadata.example.test resolves only to forbidden addresses: 169.254.169.254 (link_local), ::ffff:169.254.169.254 (link_local)');
});

test('the system resolver (here /etc/hosts for localhost), both families, opened only by a listing', async (t) => {
  const closed = await planDial('localhost', 8080, undefined, [], systemResolver);
  t.like(closed, { ok: false, reason: 'forbidden_address' });
  const open = await planDial('localhost', 8080, undefined, cidrs('127.0.0.0/8', '::1'), systemResolver);
  t.true(open.ok);
  if (open.ok) t.true(open.targets.some((target) => target.address === '127.0.0.1' && target.port === 8080));
});

test('an IP literal is dialled as is, and vetted like any address', async (t) => {
  t.like(await planDial('203.0.113.9', 443, undefined, [], resolver), { ok: false, reason: 'forbidden_address' });
  t.like(await planDial('2606:4700::1111', 443, undefined, [], resolver), { ok: true, targets: [{ address: '2606:4700::1111', port: 443 }] });
});

test('STATIC endpoints replace the host, each with its own port; DNS endpoints are names to resolve', async (t) => {
  const staticPlan = await planDial('db.example.test', 5432, { resolution: 'STATIC', port: 5432, endpoints: [{ address: '10.1.2.3', port: 6432 }, { address: '10.1.2.4', port: 5432 }] }, cidrs('10.1.2.3'), resolver);
  t.deepEqual(staticPlan, { ok: true, targets: [{ address: '10.1.2.3', port: 6432 }], refused: [{ address: '10.1.2.4', range: 'private' }] });
  const dnsPlan = await planDial('api.example.test', 443, { resolution: 'DNS', port: 443, endpoints: [{ address: 'mixed.example.test', port: 8443 }] }, [], resolver);
  t.deepEqual(dnsPlan, { ok: true, targets: [{ address: '93.184.216.34', port: 8443 }], refused: [{ address: '10.0.0.1', range: 'private' }] });
  const nonePlan = await planDial('mixed.example.test', 443, { resolution: 'NONE', port: 443 }, [], resolver);
  t.like(nonePlan, { ok: true, targets: [{ address: '93.184.216.34', port: 443 }] });
});

async function listening(t: { teardown(fn: () => void): void }): Promise<number> {
  const server = net.createServer((socket) => socket.end());
  t.teardown(() => server.close());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('dialFirst tries each address in turn and returns the first that answers', async (t) => {
  const open = await listening(t);
  const dead = await closedPort();
  const dialled = await dialFirst([{ address: '127.0.0.1', port: dead }, { address: '127.0.0.1', port: open }], 2000);
  t.is(dialled.dst, `127.0.0.1:${open}`);
  dialled.socket.destroy();
});

test('dialFirst with nothing answering rejects with every failure, not as a timeout', async (t) => {
  const dead = await closedPort();
  const err = await dialFirst([{ address: '127.0.0.1', port: dead }, { address: '::1', port: dead }], 2000).catch((e: unknown) => e);
  t.true(err instanceof EgressdError);
  t.is((err as EgressdError).code, 'EGRESSD_ERR_UPSTREAM');
  t.is((err as EgressdError).context.timedOut, false);
  t.is(((err as EgressdError).context.failures as string[]).length, 2);
});

test('--resolve overrides answer a name whatever their port; other names go to the system resolver', async (t) => {
  const resolve = resolverWithOverrides([parseResolveOverride('localhost:443:127.0.0.2'), parseResolveOverride('other.test:10.0.0.9')], systemResolver);
  t.deepEqual(await resolve('localhost'), ['127.0.0.2']);
  t.deepEqual(await resolve('other.test'), ['10.0.0.9']);
});
