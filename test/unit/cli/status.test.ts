/**
 * egressctl status, the real binary in a child process, against a real
 * agent (in-process, loopback) holding a certificate from a real control plane.
 */
import test from 'ava';
import net from 'node:net';
import type { AgentStatus } from '../../../src/cli/status-command.ts';
import { adminGet, echoServer, eventually, proxyConnect, serviceEntry, startTestAgent } from '../agent/_harness.ts';
import { SPIFFE_ID, startTestCa } from '../agent/_identity.ts';
import { egressctl } from './run-egressctl.ts';

test('a ready agent with a certificate: exit 0, with config, listeners, certificate and counters; the same as JSON', async (t) => {
  const ca = await startTestCa(t);
  const server = await echoServer(t);
  const agent = await startTestAgent(t, {
    files: { 'api.yaml': serviceEntry('api', ['api.example.test'], [{ number: server.port, protocol: 'TCP' }]) },
    config: { namespace: 'shop', labels: { app: 'web' }, identity: ca.identity(), resolve: [{ host: 'api.example.test', port: server.port, address: '127.0.0.1' }] },
  });
  await eventually(async () => ((await adminGet(agent, '/healthz/ready')).status === 200 ? true : undefined), 'the agent ready with its certificate');
  const allowed = await proxyConnect(agent.proxyPort, `api.example.test:${server.port}`);
  allowed.socket.end();
  t.is((await proxyConnect(agent.proxyPort, 'denied.example.test:443')).status, 403);
  await agent.audit.count(2);

  const admin = `http://127.0.0.1:${agent.adminPort}`;
  const text = await egressctl(['status', '--admin', admin]);
  t.is(text.code, 0, text.stderr);
  const lines = text.stdout.split('\n');
  t.is(lines[0], `egressd agent at ${admin}: ready`);
  t.regex(text.stdout, new RegExp(`config +directory ${agent.configDir}: version 1, 1 file \\(serviceEntries 1, `));
  t.regex(text.stdout, /workload +namespace shop, labels app=web/);
  t.regex(text.stdout, new RegExp(`listeners +outbound 127\\.0\\.0\\.1:${agent.outboundPort}; proxy 127\\.0\\.0\\.1:${agent.proxyPort}; admin 127\\.0\\.0\\.1:${agent.adminPort}`));
  t.regex(text.stdout, new RegExp(`certificate +${SPIFFE_ID}, serial [0-9a-f]+, valid \\S+ to \\S+, next renewal \\S+, 1 renewal, 0 failures`));
  t.regex(text.stdout, /connections +1 allowed, 1 denied \(no_matching_rule 1\), 0 open/);

  const json = await egressctl(['status', '--admin', `127.0.0.1:${agent.adminPort}`, '--output', 'json']);
  t.is(json.code, 0, json.stderr);
  const status = JSON.parse(json.stdout) as AgentStatus;
  t.like(status, {
    admin,
    ready: true,
    reason: null,
    config: { version: 1, files: 1, lastError: null, reloads: 1, failures: 0 },
    workload: { namespace: 'shop', labels: { app: 'web' } },
    listeners: { proxy: [`127.0.0.1:${agent.proxyPort}`] },
    certificate: { enabled: true, identity: SPIFFE_ID, ready: true, renewals: 1 },
    connections: { allowed: 1, denied: 1, open: 0, deniedBy: { no_matching_rule: 1 } },
  });
});

test('an agent still waiting for its certificate: exit 1 with the reason', async (t) => {
  const ca = await startTestCa(t, { writeToken: false });
  const agent = await startTestAgent(t, { config: { namespace: 'shop', identity: ca.identity() } });
  const run = await egressctl(['status', '--admin', `http://127.0.0.1:${agent.adminPort}`]);
  t.is(run.code, 1, run.stderr);
  t.regex(run.stdout, /: NOT READY: no workload certificate yet/);
  t.regex(run.stdout, new RegExp(`certificate +${SPIFFE_ID}, not issued yet`));
  const json = JSON.parse((await egressctl(['status', '--admin', `http://127.0.0.1:${agent.adminPort}`, '--output', 'json'])).stdout) as AgentStatus;
  t.like(json, { ready: false, certificate: { enabled: true, ready: false, serial: null } });
  t.regex(json.reason ?? '', /^no workload certificate yet/);
});

test('an agent without identity: the certificate line says it is not enabled', async (t) => {
  const agent = await startTestAgent(t, {});
  const run = await egressctl(['status', '--admin', `http://127.0.0.1:${agent.adminPort}`]);
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout, /certificate +none \(identity not enabled: no --ca-address\)/);
});

test('nothing listening at --admin: exit 2, EGRESSD_ERR_ADMIN_UNREACHABLE', async (t) => {
  const closed = net.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const { port } = closed.address() as net.AddressInfo;
  await new Promise((resolve) => closed.close(resolve));
  const run = await egressctl(['status', '--admin', `http://127.0.0.1:${port}`]);
  t.is(run.code, 2);
  t.is(run.stdout, '');
  t.regex(run.stderr, new RegExp(`egressctl status: cannot reach the agent's admin endpoint http://127\\.0\\.0\\.1:${port}/\\S+: ECONNREFUSED \\(EGRESSD_ERR_ADMIN_UNREACHABLE\\)`));
});

test('a bad --admin or --output is a usage error (exit 2)', async (t) => {
  const admin = await egressctl(['status', '--admin', 'ftp://127.0.0.1:15000']);
  t.is(admin.code, 2);
  t.regex(admin.stderr, /^egressctl status: --admin "ftp:\/\/127\.0\.0\.1:15000" is not an http:\/\/ address \(e\.g\. http:\/\/127\.0\.0\.1:15000\) \(EGRESSD_ERR_USAGE\)/);
  const output = await egressctl(['status', '--output', 'yaml']);
  t.is(output.code, 2);
  t.regex(output.stderr, /--output must be text or json/);
});
