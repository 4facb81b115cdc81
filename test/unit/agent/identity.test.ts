/**
 * The agent's workload identity against a real control plane in-process on
 * loopback: the certificate gates readiness, /certs and the metrics show
 * it, renewals happen under an open connection, expiry is loud.
 */
import test from 'ava';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { agentConfig } from '../../../src/agent/agent-config.ts';
import type { CertsDump } from '../../../src/agent/identity.ts';
import { OUTPUT_FILES } from '../../../src/pki/certificate-manager.ts';
import { adminGet, echoServer, eventually, proxyConnect, serviceEntry, startTestAgent, tempDir, type TestAgent } from './_harness.ts';
import { SPIFFE_ID, startTestCa } from './_identity.ts';

async function certs(agent: TestAgent): Promise<CertsDump> {
  return JSON.parse((await adminGet(agent, '/certs')).body) as CertsDump;
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms).unref())]);
}

test('without --ca-address there is no certificate, /certs says so, and readiness does not wait for one', async (t) => {
  const agent = await startTestAgent(t, {});
  t.is(agent.handle.identity, undefined);
  t.deepEqual(await certs(agent), { enabled: false });
  t.is((await adminGet(agent, '/healthz/ready')).status, 200);
});

test('the agent is not ready until it holds a certificate; then /certs, the metrics and the output files show it', async (t) => {
  const ca = await startTestCa(t, { writeToken: false });
  const out = join(tempDir(t), 'identity');
  const agent = await startTestAgent(t, { config: { namespace: 'shop', identity: ca.identity({ certOutputDir: out }) } });
  const failed = await eventually(async () => ((await certs(agent)).failures ?? 0) > 0 || undefined, 'a failed certificate request (no token yet)');
  t.true(failed);
  const notReady = await adminGet(agent, '/healthz/ready');
  t.is(notReady.status, 503);
  t.regex(notReady.body, /^NOT READY: no workload certificate yet \(token file .*token: ENOENT/);
  t.like(await certs(agent), { enabled: true, identity: SPIFFE_ID, ready: false, serial: null, notAfter: null, renewals: 0 });

  await ca.writeToken();
  await within(agent.handle.identity!.whenReady(15_000), 20_000, 'the first certificate');
  await eventually(async () => ((await adminGet(agent, '/healthz/ready')).status === 200 ? true : undefined), 'readiness');
  const held = await certs(agent);
  t.like(held, { enabled: true, identity: SPIFFE_ID, ready: true, ca: `127.0.0.1:${ca.cp.grpcPort}`, renewals: 1, consecutiveFailures: 0, lastError: null });
  t.regex(held.serial ?? '', /^[0-9a-f]{16,}$/);
  const lifetime = Date.parse(held.notAfter!) - Date.parse(held.notBefore!);
  t.true(lifetime > 3600_000 && lifetime <= 3660_000, 'an hour asked, notBefore backdated a minute');
  t.true(Date.parse(held.nextRenewal!) > Date.now());

  const metrics = (await adminGet(agent, '/stats/prometheus')).body;
  t.true(metrics.includes(`egressd_identity_certificate_ready{spiffe_id="${SPIFFE_ID}"} 1`));
  t.true(metrics.includes(`egressd_identity_renewals_total{spiffe_id="${SPIFFE_ID}"} 1`));
  t.like(JSON.parse((await adminGet(agent, '/config_dump')).body), { ready: true });

  const leaf = new X509Certificate(await readFile(join(out, OUTPUT_FILES.chain), 'utf8'));
  t.is(leaf.subjectAltName, `URI:${SPIFFE_ID}`);
  t.is(leaf.serialNumber.toLowerCase(), held.serial ?? '', 'the files hold the certificate in force');
  t.true(leaf.checkPrivateKey(createPrivateKey(await readFile(join(out, OUTPUT_FILES.key), 'utf8'))));
});

test('renewal with a few-second TTL is seen on /certs without a restart, and a connection through the agent stays up', async (t) => {
  const ca = await startTestCa(t);
  const server = await echoServer(t);
  const agent = await startTestAgent(t, {
    files: { 'api.yaml': serviceEntry('api', ['api.example.test'], [{ number: server.port, protocol: 'TCP' }]) },
    config: { namespace: 'shop', identity: ca.identity({ certTtlSeconds: 4 }), resolve: [{ host: 'api.example.test', port: server.port, address: '127.0.0.1' }] },
  });
  await within(agent.handle.identity!.whenReady(15_000), 20_000, 'the first certificate');
  const tunnel = await proxyConnect(agent.proxyPort, `api.example.test:${server.port}`);
  t.is(tunnel.status, 200);
  t.teardown(() => tunnel.socket.destroy());
  const echo = async (text: string): Promise<string> => {
    tunnel.socket.write(text);
    const [chunk] = (await once(tunnel.socket, 'data')) as [Buffer];
    return chunk.toString();
  };
  t.is(await echo('before'), 'before');

  const serials = [(await certs(agent)).serial];
  for (let i = 0; i < 2; i++) {
    const next = await eventually(async () => {
      const c = await certs(agent);
      return c.serial !== serials.at(-1) && c.ready ? c : undefined;
    }, `renewal ${i + 1}`);
    serials.push(next.serial);
    t.is(await echo(`after renewal ${i + 1}`), `after renewal ${i + 1}`, 'the open connection carries on');
  }
  t.is(new Set(serials).size, 3);
  t.true(((await certs(agent)).renewals ?? 0) >= 3);
  t.is(agent.audit.items.length, 0, 'the connection is still open: no record yet');
});

test('an expired certificate makes the agent not ready, with an error in the log', async (t) => {
  const ca = await startTestCa(t);
  const agent = await startTestAgent(t, { config: { namespace: 'shop', identity: ca.identity({ certTtlSeconds: 3 }) } });
  const manager = agent.handle.identity!;
  await within(manager.whenReady(15_000), 20_000, 'the first certificate');
  await ca.cp.stop();
  await within(once(manager, 'expired'), 20_000, 'the certificate to expire');
  const ready = await adminGet(agent, '/healthz/ready');
  t.is(ready.status, 503);
  t.regex(ready.body, /^NOT READY: workload certificate expired at \d{4}-\d\d-\d\dT/);
  const logged = await agent.logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('CERTIFICATE EXPIRED'), 'the expiry log line');
  t.like(logged, { level: 50, spiffeId: SPIFFE_ID });
  t.like(await certs(agent), { ready: false });
  t.true(((await certs(agent)).failures ?? 0) > 0);
  t.true((await adminGet(agent, '/stats/prometheus')).body.includes(`egressd_identity_certificate_ready{spiffe_id="${SPIFFE_ID}"} 0`));
});

test('identity settings are validated with the rest, every problem at once', (t) => {
  const identity = { caAddress: 'nowhere', caRootCert: '', tokenFile: '/t', trustDomain: 'Bad Domain', serviceAccount: 'cart', certTtlSeconds: 0, renewFraction: 1.5 };
  const err = t.throws(() => agentConfig({ identity }));
  t.is((err as { code?: string }).code, 'EGRESSD_ERR_USAGE');
  for (const part of ['caAddress "nowhere" is not host:port', 'caRootCert is empty', 'trust domain "Bad Domain"', 'certTtlSeconds: 0', 'renewFraction: 1.5']) {
    t.true(err!.message.includes(part), part);
  }
});
