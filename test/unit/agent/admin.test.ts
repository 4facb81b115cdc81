import test from 'ava';
import net from 'node:net';
import { adminGet, echoServer, eventually, proxyConnect, serviceEntry, startTestAgent } from './_harness.ts';

test('/healthz/ready is 200 once listeners are up and a config is loaded', async (t) => {
  const agent = await startTestAgent(t);
  t.deepEqual(await adminGet(agent, '/healthz/ready'), { status: 200, body: 'LIVE\n' });
});

test('/stats/prometheus has the agent metrics, labelled by listener, decision and reason', async (t) => {
  const agent = await startTestAgent(t, { config: { namespace: 'shop' } });
  const refused = await proxyConnect(agent.proxyPort, 'denied.example.test:443');
  t.is(refused.status, 403);
  await agent.audit.find(() => true);
  const { status, body } = await adminGet(agent, '/stats/prometheus');
  t.is(status, 200);
  t.regex(body, /^egressd_agent_connections_total\{listener="proxy",decision="deny",reason="no_matching_rule"\} 1$/m);
  t.regex(body, /^egressd_agent_active_connections\{listener="proxy"\} 0$/m);
  t.regex(body, /^egressd_agent_bytes_sent_total\{listener="proxy"\} 0$/m);
  t.regex(body, /^egressd_agent_config_reloads_total 1$/m);
  t.regex(body, /^egressd_agent_config_reload_failures_total 0$/m);
  t.regex(body, /^# TYPE egressd_agent_malformed_client_hellos_total counter$/m);
  t.regex(body, /^process_cpu_seconds_total /m);
  t.regex(body, /^nodejs_heap_size_used_bytes /m);
  t.regex(body, /^# TYPE nodejs_gc_duration_seconds histogram$/m);
  // Measured when scraped; the timer-driven percentiles (a 10 ms wake-up) are left out.
  t.regex(body, /^nodejs_eventloop_lag_seconds \d/m);
  t.notRegex(body, /nodejs_eventloop_lag_p99_seconds/);
});

test('/config_dump shows the loaded files, their summary, the last reload and the options', async (t) => {
  const agent = await startTestAgent(t, {
    files: { 'api.yaml': serviceEntry('api', ['api.example.test'], [{ number: 443, protocol: 'TLS' }]) },
    config: { namespace: 'shop', labels: { app: 'web' } },
  });
  const { status, body } = await adminGet(agent, '/config_dump');
  t.is(status, 200);
  const dump = JSON.parse(body) as Record<string, unknown>;
  t.like(dump, {
    ready: true,
    activeConnections: 0,
    config: {
      source: `directory ${agent.configDir}`,
      reloads: 1,
      failures: 0,
      lastError: null,
      current: { version: 1, files: [`${agent.configDir}/api.yaml`], summary: { serviceEntries: 1, hosts: 1 } },
    },
    options: { configDir: agent.configDir, namespace: 'shop', labels: { app: 'web' }, outboundPort: 0 },
    listeners: { proxy: { address: '127.0.0.1', port: agent.proxyPort }, admin: { port: agent.adminPort } },
  });
});

test('unknown admin paths are 404 and writes are 405', async (t) => {
  const agent = await startTestAgent(t);
  t.is((await adminGet(agent, '/nope')).status, 404);
  const res = await fetch(`http://127.0.0.1:${agent.adminPort}/healthz/ready`, { method: 'POST' });
  t.is(res.status, 405);
});

test('close() drains: not ready any more, open tunnels keep working until they end, then every record is written', async (t) => {
  const server = await echoServer(t);
  const agent = await startTestAgent(t, {
    files: { 'api.yaml': serviceEntry('api', ['api.example.test'], [{ number: server.port, protocol: 'TCP' }]) },
    config: { resolve: [{ host: 'api.example.test', port: server.port, address: '127.0.0.1' }], drainMs: 60_000 },
  });
  const tunnel = await proxyConnect(agent.proxyPort, `api.example.test:${server.port}`);
  t.is(tunnel.status, 200);
  const closed = agent.handle.close();
  await eventually(async () => {
    const ready = await adminGet(agent, '/healthz/ready');
    return ready.status === 503 && ready.body.includes('draining') ? true : undefined;
  }, 'readiness to drop');
  const late = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: agent.proxyPort }, () => resolve(undefined));
    socket.on('error', resolve);
  });
  t.is(late?.code, 'ECONNREFUSED', 'no new connections while draining');
  tunnel.socket.write('during drain');
  const echoed = await new Promise<string>((resolve) => tunnel.socket.once('data', (c: Buffer) => resolve(c.toString())));
  t.is(echoed, 'during drain');
  t.is(agent.audit.items.length, 0, 'the record waits for the end of the connection');
  tunnel.socket.end();
  tunnel.socket.resume();
  await closed;
  t.like(agent.audit.items[0], { decision: 'allow', bytes_sent: 'during drain'.length, bytes_received: 'during drain'.length, error: null });
});

test('close() cuts what is still open when the drain period is over, and still writes its record', async (t) => {
  const server = await echoServer(t);
  const agent = await startTestAgent(t, {
    files: { 'api.yaml': serviceEntry('api', ['api.example.test'], [{ number: server.port, protocol: 'TCP' }]) },
    config: { resolve: [{ host: 'api.example.test', port: server.port, address: '127.0.0.1' }], drainMs: 0 },
  });
  const tunnel = await proxyConnect(agent.proxyPort, `api.example.test:${server.port}`);
  tunnel.socket.on('error', () => undefined);
  tunnel.socket.write('x');
  await new Promise((resolve) => tunnel.socket.once('data', resolve));
  await agent.handle.close();
  t.is(agent.audit.items.length, 1);
  t.like(agent.audit.items[0], { decision: 'allow', bytes_sent: 1 });
  t.regex(agent.audit.items[0]!.error ?? '', /agent shutting down/);
});
