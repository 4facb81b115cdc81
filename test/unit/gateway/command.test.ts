import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gatewayConfigFromArgs } from '../../../src/gateway/command.ts';
import { GatewayPool } from '../../../src/tunnel/pool.ts';
import { TestCa, writeCredentials } from './_pki.ts';
import { GATEWAY_ID } from './_world.ts';

const BIN = fileURLToPath(new URL('../../../bin/egressd.js', import.meta.url));

test('every bad flag is named at once', (t) => {
  const err = t.throws(() =>
    gatewayConfigFromArgs(['--listen', 'nope', '--allow-private-cidrs', '10.0.0.0/33', '--resolve', 'x', '--trust-domain', 'Bad Domain', '--connect-timeout-ms', '0'], {}),
  );
  t.is((err as { code?: string }).code, 'EGRESSD_ERR_USAGE');
  for (const flag of ['--cert is required', '--key is required', '--trust-bundle is required', '--listen', '--allow-private-cidrs', '--resolve', '--trust-domain', '--connect-timeout-ms']) {
    t.true(err!.message.includes(flag), flag);
  }
});

test('flags fall back to environment variables', (t) => {
  const { config } = gatewayConfigFromArgs([], {
    EGRESSD_GATEWAY_CERT: '/c.pem',
    EGRESSD_GATEWAY_KEY: '/k.pem',
    EGRESSD_TRUST_BUNDLE: '/t.pem',
    POD_NAME: 'egress-gateway-7f9c',
    EGRESSD_ALLOW_PRIVATE_CIDRS: '10.20.0.0/16, 192.168.1.1',
    EGRESSD_RESOLVE: 'api.example.test:443:10.20.0.5',
  });
  t.is(config.replica, 'egress-gateway-7f9c');
  t.deepEqual(config.credentials, { certFile: '/c.pem', keyFile: '/k.pem', trustBundleFile: '/t.pem' });
  t.deepEqual(
    config.allowPrivateCidrs!.map((c) => c.text),
    ['10.20.0.0/16', '192.168.1.1/32'],
  );
  t.deepEqual(config.resolve, [{ host: 'api.example.test', port: 443, address: '10.20.0.5' }]);
  t.deepEqual(config.listen, { host: '0.0.0.0', port: 15008 });
});

test('`egressd gateway` runs as a process: ready on its admin port, carries a tunnel, audits to a file, stops on SIGTERM', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'egressd-gateway-cmd-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const mesh = await TestCa.create();
  const creds = writeCredentials(join(dir, 'creds'), mesh.issue({ uris: [GATEWAY_ID] }), mesh.rootPem);
  mkdirSync(join(dir, 'config'));
  writeFileSync(
    join(dir, 'config', 'allowlist.yaml'),
    'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: { name: x, namespace: egress }\nspec:\n  hosts: [x.example.test]\n  resolution: DNS\n  ports: [{ number: 443, name: tls, protocol: TLS }]\n',
  );
  const auditFile = join(dir, 'audit.log');
  const child = spawn(
    process.execPath,
    [BIN, 'gateway', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--cert', creds.certFile, '--key', creds.keyFile, '--trust-bundle', creds.trustBundleFile,
      '--config-dir', join(dir, 'config'), '--replica', 'cmd-0', '--audit-log', auditFile, '--resolve', 'x.example.test:443:169.254.169.254'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  // The "gateway ready" log line names the ports chosen.
  const ready = await new Promise<{ listen: string; admin: string }>((resolve, reject) => {
    let text = '';
    child.stderr.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      for (const line of text.split('\n')) {
        if (line.includes('"gateway ready"')) resolve(JSON.parse(line) as { listen: string; admin: string });
      }
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${text}`)));
  });
  const status = await new Promise<number>((resolve, reject) =>
    http.get(`http://${ready.admin}/healthz/ready`, (res) => resolve(res.statusCode!)).on('error', reject),
  );
  t.is(status, 200);
  const leaf = mesh.workload('default', 'app');
  const pool = new GatewayPool({ addresses: [ready.listen], secureContext: () => mesh.context(leaf), gatewayIdentities: [GATEWAY_ID], pingIntervalMs: 0 });
  t.like(await pool.open({ host: 'x.example.test', port: 443, protocol: 'tls', connectionId: 'cmd' }), { ok: false, status: 403, reason: 'forbidden_address', gatewayReplica: 'cmd-0' });
  await pool.close(0);
  child.kill('SIGTERM');
  t.is(await exited, 0);
  const records = readFileSync(auditFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.like(records[0], { component: 'gateway', connection_id: 'cmd', reason: 'forbidden_address', replica: 'cmd-0', identity: 'spiffe://cluster.local/ns/default/sa/app' });
});

test('`egressd gateway` with unreadable credentials fails at start with the PKI error code', async (t) => {
  const child = spawn(process.execPath, [BIN, 'gateway', '--cert', '/nonexistent/c.pem', '--key', '/nonexistent/k.pem', '--trust-bundle', '/nonexistent/t.pem', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.is(code, 1);
  t.regex(stderr, /EGRESSD_ERR_PKI/);
});
