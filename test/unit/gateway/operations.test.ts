import test from 'ava';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import { join } from 'node:path';
import tls from 'node:tls';
import type { Gateway } from '../../../src/gateway/gateway.ts';
import { GATEWAY_ID, startWorld, type World } from './_world.ts';

const request = { host: 'api.example.test', port: 443, protocol: 'tls' as const };

async function get(w: World, path: string): Promise<{ status: number; type: string; body: string }> {
  const { port } = w.gateway.adminAddress()!;
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body }));
      })
      .on('error', reject);
  });
}

async function reloads(gateway: Gateway, what: string, outcome: string): Promise<number> {
  const metric = await gateway.metrics.reloads.get();
  return metric.values.find((v) => v.labels.what === what && v.labels.outcome === outcome)?.value ?? 0;
}

/** The serial of the certificate the gateway presents to a new connection. */
async function servedSerial(w: World): Promise<string> {
  const leaf = w.mesh.workload('default', 'app');
  const socket = tls.connect({
    host: '127.0.0.1',
    port: w.gateway.address().port,
    ca: w.mesh.rootPem,
    cert: leaf.certPem,
    key: leaf.keyPem,
    ALPNProtocols: ['h2'],
    checkServerIdentity: () => undefined,
  });
  await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  const serial = socket.getPeerCertificate().serialNumber;
  socket.destroy();
  return serial;
}

test('admin: readiness, Prometheus metrics after a tunnel, and a config dump without key material', async (t) => {
  const w = await startWorld(t);
  const result = await w.pool().open(request);
  if (result.ok) result.stream.destroy();
  await w.audit.find(() => true);
  const ready = await get(w, '/healthz/ready');
  t.is(ready.status, 200);
  const stats = await get(w, '/stats/prometheus');
  t.is(stats.status, 200);
  t.regex(stats.body, /egressd_gateway_tunnels_total\{decision="allow",reason="allowed_by_rule",protocol="tls"\} 1/);
  t.regex(stats.body, /egressd_gateway_active_sessions 1/);
  t.regex(stats.body, /egressd_gateway_handshake_failures_total/);
  t.regex(stats.body, /egressd_gateway_bytes_total/);
  const dump = await get(w, '/config_dump');
  t.is(dump.type, 'application/json');
  const parsed = JSON.parse(dump.body) as { replica: string; trustDomain: string; config: { files: string[] }; credentials: { subjectAltName: string } };
  t.is(parsed.replica, 'gw-0');
  t.is(parsed.trustDomain, 'cluster.local');
  t.deepEqual(parsed.config.files, [join(w.configDir, 'allowlist.yaml')]);
  t.true(parsed.credentials.subjectAltName.includes(GATEWAY_ID));
  t.false(dump.body.includes('PRIVATE KEY'));
  t.is((await get(w, '/nope')).status, 404);
});

test('a config change is picked up; a broken one is refused and the last good allowlist stays in force', async (t) => {
  const w = await startWorld(t);
  const pool = w.pool();
  const file = join(w.configDir, 'allowlist.yaml');
  writeFileSync(file, 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: { name: [broken\n');
  t.like(await w.gateway.reload(), { config: 'failed', credentials: 'unchanged' });
  t.is(await reloads(w.gateway, 'config', 'failed'), 1);
  const still = await pool.open(request);
  t.true(still.ok, 'the last good allowlist still allows api.example.test');
  if (still.ok) still.stream.destroy();
  const dump = JSON.parse((await get(w, '/config_dump')).body) as { config: { lastError: string } };
  t.regex(dump.config.lastError, /error/);

  writeFileSync(
    file,
    `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: other, namespace: egress }
spec:
  hosts: [other.example.test]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{ number: 443, name: tls, protocol: TLS }]
`,
  );
  t.like(await w.gateway.reload(), { config: 'loaded' });
  t.like(await pool.open(request), { ok: false, status: 403, reason: 'no_matching_rule' });
});

test('the poller notices a changed allowlist by itself', async (t) => {
  const w = await startWorld(t, { gateway: { reloadIntervalMs: 25 } });
  writeFileSync(join(w.configDir, 'extra.yaml'), 'apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: { name: default, namespace: team }\nspec: {}\n');
  const deadline = Date.now() + 10_000;
  while ((await reloads(w.gateway, 'config', 'loaded')) < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
  t.is(await reloads(w.gateway, 'config', 'loaded'), 2);
});

test('rotated gateway credentials are served to new connections; unusable ones are refused and the old ones kept', async (t) => {
  const w = await startWorld(t);
  const creds = join(w.dir, 'creds-gw-0');
  const before = await servedSerial(w);
  writeFileSync(join(creds, 'cert.pem'), 'not a certificate');
  t.like(await w.gateway.reload(), { credentials: 'failed' });
  t.is(await servedSerial(w), before);
  const next = w.mesh.issue({ uris: [GATEWAY_ID] });
  writeFileSync(join(creds, 'cert.pem'), next.certPem);
  writeFileSync(join(creds, 'key.pem'), next.keyPem);
  t.like(await w.gateway.reload(), { credentials: 'loaded' });
  const after = await servedSerial(w);
  t.not(after, before);
  t.is(after.toLowerCase(), new (await import('node:crypto')).X509Certificate(next.certPem).serialNumber.toLowerCase());
  const result = await w.pool().open(request);
  t.true(result.ok, 'agents still reach the gateway after the rotation');
  if (result.ok) result.stream.destroy();
});

for (const [what, headers, problem] of [
  ['a CONNECT without egressd-protocol', { ':method': 'CONNECT', ':authority': 'api.example.test:443' }, /egressd-protocol/],
  ['a CONNECT to a wildcard', { ':method': 'CONNECT', ':authority': '*.example.test:443', 'egressd-protocol': 'tls' }, /authority/],
  ['a GET', { ':method': 'GET', ':path': '/', 'egressd-protocol': 'tls' }, /not CONNECT/],
] as const) {
  test(`${what} is answered 400 and audited`, async (t) => {
    const w = await startWorld(t);
    const leaf = w.mesh.workload('default', 'app');
    const session = http2.connect(`https://127.0.0.1:${w.gateway.address().port}`, {
      ca: w.mesh.rootPem,
      cert: leaf.certPem,
      key: leaf.keyPem,
      checkServerIdentity: () => undefined,
    });
    t.teardown(() => session.destroy());
    const stream = session.request({ ...headers });
    const status = await new Promise<number>((resolve) => stream.once('response', (h) => resolve(Number(h[':status']))));
    t.is(status, 400);
    const record = await w.audit.find(() => true);
    t.like(record, { decision: 'deny', reason: 'bad_request', identity: 'spiffe://cluster.local/ns/default/sa/app' });
    t.regex(record.error ?? '', problem);
  });
}
