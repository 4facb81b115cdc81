import test, { type ExecutionContext } from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { startEcho, type EchoServer, type Seen } from './_echo.ts';
import { TestCa } from './_pki.ts';
import { startWorld, type World } from './_world.ts';

/**
 * TLS origination against a destination with its own CA: what the gateway
 * verifies (CA, subjectAltNames, system roots by default), what it presents
 * (MUTUAL from the credentials directory), and the x-forwarded-client-cert switch.
 */

interface Destination {
  dir: string;
  ca: TestCa;
  caFile: string;
  server: EchoServer;
}

async function destination(t: ExecutionContext, options: { clientCa?: string } = {}): Promise<Destination> {
  const dir = mkdtempSync(join(tmpdir(), 'egressd-originate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ca = await TestCa.create('partner.test');
  const caFile = join(dir, 'partner-ca.pem');
  writeFileSync(caFile, ca.rootPem);
  const server = await startEcho({ leaf: ca.issue({ dnsNames: ['partner.example.test'] }), ...(options.clientCa ? { clientCa: options.clientCa } : {}) });
  t.teardown(() => server.close());
  return { dir, ca, caFile, server };
}

/** partner.example.test:80 over HTTP, STATIC on the destination's port, with `tls` as the DestinationRule's settings. */
function allowlist(d: Destination, tls: string, entryLabels = ''): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: partner, namespace: egress${entryLabels} }
spec:
  hosts: [partner.example.test]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${d.server.port} } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: partner-tls, namespace: egress }
spec:
  host: partner.example.test
  trafficPolicy:
    tls: ${tls}
`;
}

async function get(w: World, id: string): Promise<{ status: number; body: string }> {
  const result = await w.pool().open({ host: 'partner.example.test', port: 80, protocol: 'http', connectionId: id });
  if (!result.ok) throw new Error(`refused: ${result.status}`);
  return new Promise((resolve, reject) => {
    const req = http.request({ createConnection: () => result.stream as Duplex, path: `/${id}`, headers: { host: 'partner.example.test' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('SIMPLE with the rule CA: verified, SNI set', async (t) => {
  const d = await destination(t);
  const w = await startWorld(t, { allowlist: () => allowlist(d, `{ mode: SIMPLE, caCertificates: ${d.caFile} }`) });
  const res = await get(w, 'simple');
  t.is(res.status, 200);
  t.like(JSON.parse(res.body) as Seen, { servername: 'partner.example.test', url: '/simple' });
});

test('SIMPLE without caCertificates verifies against the system roots, which do not know a private CA: 502', async (t) => {
  const d = await destination(t);
  const w = await startWorld(t, { allowlist: () => allowlist(d, '{ mode: SIMPLE }') });
  t.is((await get(w, 'roots')).status, 502);
  t.regex((await w.audit.find((r) => r.connection_id === 'roots')).error ?? '', /TLS to partner\.example\.test .*(self.signed|issuer|verify)/i);
  t.is(d.server.seen.length, 0);
});

test('subjectAltNames the server certificate does not carry: 502', async (t) => {
  const d = await destination(t);
  const w = await startWorld(t, { allowlist: () => allowlist(d, `{ mode: SIMPLE, caCertificates: ${d.caFile}, subjectAltNames: [billing.example.test] }`) });
  t.is((await get(w, 'san')).status, 502);
  t.regex((await w.audit.find((r) => r.connection_id === 'san')).error ?? '', /matches none of billing\.example\.test/);
});

test('subjectAltNames the server certificate carries: 200', async (t) => {
  const d = await destination(t);
  const w = await startWorld(t, { allowlist: () => allowlist(d, `{ mode: SIMPLE, caCertificates: ${d.caFile}, subjectAltNames: [other.example.test, partner.example.test] }`) });
  t.is((await get(w, 'san-ok')).status, 200);
});

test('insecureSkipVerify connects to an unverifiable server', async (t) => {
  const d = await destination(t);
  const w = await startWorld(t, { allowlist: () => allowlist(d, '{ mode: SIMPLE, insecureSkipVerify: true }') });
  t.is((await get(w, 'insecure')).status, 200);
});

test('MUTUAL presents the client certificate of credentialName and trusts its ca.crt', async (t) => {
  const clientCa = await TestCa.create('egress-clients.test');
  const d = await destination(t, { clientCa: clientCa.rootPem });
  const credentials = join(d.dir, 'credentials');
  const client = clientCa.issue({ dnsNames: ['egress.cluster.example'] });
  mkdirSync(join(credentials, 'partner-client'), { recursive: true });
  writeFileSync(join(credentials, 'partner-client', 'tls.crt'), client.certPem);
  writeFileSync(join(credentials, 'partner-client', 'tls.key'), client.keyPem);
  writeFileSync(join(credentials, 'partner-client', 'ca.crt'), d.ca.rootPem);
  const w = await startWorld(t, { allowlist: () => allowlist(d, '{ mode: MUTUAL, credentialName: partner-client }'), gateway: { credentialsDir: credentials } });
  const res = await get(w, 'mutual');
  t.is(res.status, 200);
  t.like(JSON.parse(res.body) as Seen, { clientSan: 'DNS:egress.cluster.example' });
});

test('MUTUAL without the credential files: 502 naming the missing file', async (t) => {
  const clientCa = await TestCa.create('egress-clients.test');
  const d = await destination(t, { clientCa: clientCa.rootPem });
  const w = await startWorld(t, { allowlist: () => allowlist(d, '{ mode: MUTUAL, credentialName: missing }'), gateway: { credentialsDir: join(d.dir, 'credentials') } });
  t.is((await get(w, 'missing')).status, 502);
  t.regex((await w.audit.find((r) => r.connection_id === 'missing')).error ?? '', /missing\/tls\.crt/);
});

test('the label egressd.io/xfcc: "false" turns x-forwarded-client-cert off', async (t) => {
  const d = await destination(t);
  const w = await startWorld(t, { allowlist: () => allowlist(d, `{ mode: SIMPLE, caCertificates: ${d.caFile} }`, ', labels: { egressd.io/xfcc: "false" }') });
  const seen = JSON.parse((await get(w, 'no-xfcc')).body) as Seen;
  t.is(seen.headers['x-forwarded-client-cert'], undefined);
  t.regex(String(seen.headers['x-request-id']), /^[0-9a-f-]{36}$/);
});
