/**
 * `egressd agent` as a process: the real bin/egressd.js, its flags and
 * environment variables, and SIGTERM draining.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AuditRecord } from '../../../src/core/audit.ts';
import { JsonLines } from '../../helpers/json-lines.ts';
import { echoServer, eventually, proxyConnect, serviceEntry, tempDir } from './_harness.ts';
import { SPIFFE_ID, startTestCa, TRUST_DOMAIN } from './_identity.ts';
import { query, rcodeOf, udp } from '../dns/_dns-client.ts';

const BIN = fileURLToPath(new URL('../../../bin/egressd.js', import.meta.url));

interface Running {
  child: ChildProcess;
  logs: JsonLines;
  stdout: JsonLines<AuditRecord>;
  exited: Promise<number | null>;
}

function runAgent(t: ExecutionContext, args: string[], env: Record<string, string> = {}): Running {
  // The DNS proxy is on by default: port 0, so that agents running side by side do not fight over 15053.
  const child = spawn(process.execPath, [BIN, 'agent', ...args], { env: { ...process.env, EGRESSD_DNS_PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs = new JsonLines();
  const stdout = new JsonLines<AuditRecord>();
  child.stderr!.pipe(logs);
  child.stdout!.pipe(stdout);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return { child, logs, stdout, exited };
}

/** Output of a run expected to end by itself: exit code and the text it printed. */
function runToEnd(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'agent', ...args], { env: { ...process.env, EGRESSD_DNS_PORT: '0', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function portOf(running: Running, listener: string): Promise<number> {
  const line = await running.logs.find((l) => l.msg === 'listening' && l.listener === listener, `the ${listener} listener`);
  return line.port as number;
}

test('SIGTERM: stops accepting, lets the open tunnel finish, writes its record to stdout and --audit-log, exits 0', async (t) => {
  const server = await echoServer(t);
  const dir = tempDir(t);
  const configDir = join(dir, 'config');
  const auditLog = join(dir, 'audit', 'egress.log');
  mkdirSync(configDir);
  writeFileSync(join(configDir, 'api.yaml'), serviceEntry('api', ['api.example.test'], [{ number: server.port, protocol: 'TCP' }]));
  const agent = runAgent(
    t,
    ['--config-dir', configDir, '--outbound-port', '0', '--proxy-port', '0', '--admin-port', '0', '--audit-log', auditLog, '--drain-seconds', '60', '--resolve', `api.example.test:${server.port}:127.0.0.1`],
    { POD_NAMESPACE: 'shop', EGRESSD_LABELS: 'app=web' },
  );
  const proxyPort = await portOf(agent, 'proxy');
  const adminPort = await portOf(agent, 'admin');
  const dump = (await (await fetch(`http://127.0.0.1:${adminPort}/config_dump`)).json()) as { options: { namespace: string; labels: Record<string, string> } };
  t.deepEqual([dump.options.namespace, dump.options.labels], ['shop', { app: 'web' }], 'namespace and labels from the environment');

  const tunnel = await proxyConnect(proxyPort, `api.example.test:${server.port}`);
  t.is(tunnel.status, 200);
  agent.child.kill('SIGTERM');
  await agent.logs.find((l) => l.msg === 'draining', 'draining');
  const late = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: proxyPort }, () => resolve(undefined));
    socket.on('error', resolve);
  });
  t.is(late?.code, 'ECONNREFUSED', 'no new connections while draining');
  tunnel.socket.write('after SIGTERM');
  const echoed = await new Promise<string>((resolve) => tunnel.socket.once('data', (c: Buffer) => resolve(c.toString())));
  t.is(echoed, 'after SIGTERM');
  t.is(agent.child.exitCode, null, 'still running while a connection is open');
  tunnel.socket.end();
  tunnel.socket.resume();
  t.is(await agent.exited, 0);

  const fromFile = readFileSync(auditLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);
  t.is(fromFile.length, 1);
  t.like(fromFile[0], { component: 'agent', listener: 'proxy', decision: 'allow', host: 'api.example.test', namespace: 'shop', bytes_sent: 13, bytes_received: 13 });
  await eventually(() => (agent.stdout.items.length > 0 ? true : undefined), 'the record on stdout');
  t.deepEqual(agent.stdout.items, fromFile);
});

test('identity flags: the process gets its certificate from the CA (service account from SERVICE_ACCOUNT), /certs shows it, files are written', async (t) => {
  const ca = await startTestCa(t);
  const dir = tempDir(t);
  const identity = ca.identity();
  const agent = runAgent(
    t,
    [
      '--config-dir', dir, '--outbound-port', '0', '--proxy-port', '0', '--admin-port', '0', '--namespace', 'shop',
      '--ca-address', identity.caAddress, '--ca-server-name', 'localhost', '--ca-root-cert', identity.caRootCert, '--token-file', identity.tokenFile,
      '--trust-domain', TRUST_DOMAIN, '--cert-ttl', '1h', '--renew-fraction', '0.6', '--cert-output-dir', join(dir, 'identity'),
    ],
    { SERVICE_ACCOUNT: 'cart' },
  );
  const adminPort = await portOf(agent, 'admin');
  await eventually(async () => ((await fetch(`http://127.0.0.1:${adminPort}/healthz/ready`)).status === 200 ? true : undefined), 'readiness');
  const certs = (await (await fetch(`http://127.0.0.1:${adminPort}/certs`)).json()) as { ready: boolean; identity: string; notBefore: string; notAfter: string };
  t.like(certs, { ready: true, identity: SPIFFE_ID });
  t.true(Date.parse(certs.notAfter) - Date.parse(certs.notBefore) <= 3660_000, '--cert-ttl 1h');
  t.regex(readFileSync(join(dir, 'identity', 'cert-chain.pem'), 'utf8'), /^-----BEGIN CERTIFICATE-----/, 'ready once the files are written');
  agent.child.kill('SIGTERM');
  t.is(await agent.exited, 0);
});

test('bad identity flags are refused before start, with exit code 2', async (t) => {
  const ttl = await runToEnd(['--ca-address', '127.0.0.1:15012', '--cert-ttl', 'soon']);
  t.is(ttl.code, 2);
  t.regex(ttl.stderr, /--cert-ttl: "soon" is not a duration/);
  const fraction = await runToEnd(['--ca-address', '127.0.0.1:15012', '--renew-fraction', 'half']);
  t.regex(fraction.stderr, /--renew-fraction: "half" is not a number between 0 and 1/);
  const rest = await runToEnd(['--ca-address', 'ca-without-port', '--renew-fraction', '1'], { SERVICE_ACCOUNT: 'Not_A_Name' });
  t.is(rest.code, 2);
  for (const part of ['caAddress "ca-without-port" is not host:port', 'service account "Not_A_Name"', 'renewFraction: 1 must be between 0 and 1']) t.true(rest.stderr.includes(part), part);
});

test('bad flags and environment variables are reported by name with exit code 2', async (t) => {
  const result = await runToEnd(['--outbound-port', 'many', '--resolve', 'api.example.test:443'], { EGRESSD_DRAIN_SECONDS: 'soon' });
  t.is(result.code, 2);
  t.regex(result.stderr, /--outbound-port: "many" is not an integer/);
  t.regex(result.stderr, /EGRESSD_DRAIN_SECONDS: "soon" is not an integer/);
  const resolve = await runToEnd(['--resolve', 'api.example.test:443']);
  t.is(resolve.code, 2);
  t.regex(resolve.stderr, /--resolve "api\.example\.test:443": expected host:port:address/);
  const connectTo = await runToEnd([], { EGRESSD_CONNECT_TO: 'api.example.test:443:127.0.0.1:8443,api.example.test:80' });
  t.is(connectTo.code, 2);
  t.regex(connectTo.stderr, /--connect-to "api\.example\.test:80": not four colon-separated parts; expected HOST1:PORT1:HOST2:PORT2/);
  const labels = await runToEnd(['--labels', 'app']);
  t.regex(labels.stderr, /--labels: "app" is not key=value/);
});

test('an audit log that cannot be opened stops the start with its error code', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'file'), '');
  const result = await runToEnd(['--config-dir', dir, '--outbound-port', '0', '--proxy-port', '0', '--admin-port', '0', '--audit-log', join(dir, 'file', 'audit.log')]);
  t.is(result.code, 1);
  t.regex(result.stderr, /cannot open audit log .*\(EGRESSD_ERR_AUDIT_LOG\)/);
});

test('--help lists every flag with its environment variable', async (t) => {
  const result = await runToEnd(['--help']);
  t.is(result.code, 0);
  for (const flag of ['--ca-address [$EGRESSD_CA_ADDRESS]', '--service-account [$SERVICE_ACCOUNT]', '--cert-ttl', '--renew-fraction', '--cert-output-dir', '--config-dir [$EGRESSD_CONFIG_DIR]', '--namespace [$POD_NAMESPACE]', '--labels-file', '--resolve', '--connect-to [$EGRESSD_CONNECT_TO]', '--drain-seconds', '--peek-timeout-ms', '--dns [$EGRESSD_DNS]', '--dns-port [$EGRESSD_DNS_PORT]', '--resolv-conf', '--cluster-domain', '--dns-deny-rcode', '--dns-auto-allocate', '--dns-bind']) {
    t.true(result.stdout.includes(flag), flag);
  }
});

test('DNS flags: the proxy answers on --dns-port with the upstreams of --resolv-conf, /config_dump lists it; --dns=false runs none', async (t) => {
  const dir = tempDir(t);
  const resolvConf = join(dir, 'resolv.conf');
  writeFileSync(resolvConf, 'nameserver 127.0.0.1\nnameserver ::1\noptions ndots:5\n');
  const agent = runAgent(t, ['--config-dir', dir, '--outbound-port', '0', '--proxy-port', '0', '--admin-port', '0', '--resolv-conf', resolvConf, '--dns-bind', '127.0.0.1', '--dns-auto-allocate'], {
    EGRESSD_DNS_DENY_RCODE: 'refused',
    EGRESSD_CLUSTER_DOMAIN: 'corp.internal',
  });
  const listener = await agent.logs.find((l) => l.msg === 'listening' && l.listener === 'dns' && l.transport === 'udp', 'the DNS listener');
  const forwarding = await agent.logs.find((l) => Array.isArray(l.upstreams), 'the upstreams');
  t.deepEqual(forwarding.upstreams, [{ host: '127.0.0.1', port: 53 }, { host: '::1', port: 53 }]);
  const adminPort = await portOf(agent, 'admin');
  const dump = (await (await fetch(`http://127.0.0.1:${adminPort}/config_dump`)).json()) as { listeners: { dns: { address: string; port: number }[] }; options: { dns: Record<string, unknown> } };
  t.deepEqual(dump.listeners.dns, [{ address: '127.0.0.1', family: 'IPv4', port: listener.port }]);
  t.like(dump.options.dns, { resolvConf, clusterDomain: 'corp.internal', denyRcode: 'REFUSED', autoAllocate: true, bind: ['127.0.0.1'] });
  await eventually(async () => ((await fetch(`http://127.0.0.1:${adminPort}/healthz/ready`)).status === 200 ? true : undefined), 'readiness');
  t.is(rcodeOf(await udp(listener.port as number, query('nothing-allows.example.test', 'A'))), 5, 'an empty allowlist allows no name: REFUSED, as EGRESSD_DNS_DENY_RCODE says');
  t.like(await agent.stdout.find(() => true), { listener: 'dns', host: 'nothing-allows.example.test', decision: 'deny' });
  agent.child.kill('SIGTERM');
  t.is(await agent.exited, 0);

  const off = runAgent(t, ['--config-dir', dir, '--outbound-port', '0', '--proxy-port', '0', '--admin-port', '0', '--dns=false']);
  const offAdmin = await portOf(off, 'admin');
  const offDump = (await (await fetch(`http://127.0.0.1:${offAdmin}/config_dump`)).json()) as { listeners: Record<string, unknown>; options: Record<string, unknown> };
  t.false('dns' in offDump.listeners);
  t.false('dns' in offDump.options);
  off.child.kill('SIGTERM');
  t.is(await off.exited, 0);
});

test('bad DNS flags are refused before start, with exit code 2; an unreadable --resolv-conf stops the start', async (t) => {
  const bad = await runToEnd(['--dns-bind', '0.0.0.0', '--dns-deny-rcode', 'SERVFAIL', '--cluster-domain', '*.local']);
  t.is(bad.code, 2);
  for (const part of ['dns: bind address "0.0.0.0" is not a loopback address', 'dns: denyRcode: "SERVFAIL" must be NXDOMAIN or REFUSED', 'dns: clusterDomain "*.local"']) t.true(bad.stderr.includes(part), part);
  const dir = tempDir(t);
  const missing = await runToEnd(['--config-dir', dir, '--outbound-port', '0', '--proxy-port', '0', '--admin-port', '0', '--resolv-conf', join(dir, 'nope.conf')]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /cannot read .*nope\.conf: ENOENT \(EGRESSD_ERR_RESOLV_CONF\)/);
});

test('gateway flags: --egress-gateway without a workload identity, --gateway-identity alone and bad values are refused before start, with exit code 2', async (t) => {
  const alone = await runToEnd([], { EGRESSD_EGRESS_GATEWAY: 'egress-gateway.egressd:15008' });
  t.is(alone.code, 2);
  t.regex(alone.stderr, /--egress-gateway needs a workload identity for mTLS to the gateway: set --ca-address/);
  const identityOnly = await runToEnd(['--gateway-identity', 'spiffe://cluster.local/ns/egressd/sa/gateway']);
  t.is(identityOnly.code, 2);
  t.regex(identityOnly.stderr, /--gateway-identity: only with --egress-gateway/);
  const bad = await runToEnd(['--ca-address', '127.0.0.1:15012', '--egress-gateway', 'no-port,gw:15008', '--gateway-identity', 'egress-gateway']);
  t.is(bad.code, 2);
  for (const part of ['--egress-gateway "no-port" is not host:port', '--gateway-identity "egress-gateway" is not a SPIFFE ID']) t.true(bad.stderr.includes(part), part);
});
