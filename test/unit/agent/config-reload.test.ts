import test from 'ava';
import { rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { adminGet, eventually, httpServer, serviceEntry, startTestAgent } from './_harness.ts';

/** Status of an absolute-URI request for host:port through the explicit proxy. */
function statusThroughProxy(proxyPort: number, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: proxyPort, path: `http://${host}:${port}/`, headers: { host: `${host}:${port}` } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

interface ConfigDump {
  config: { reloads: number; failures: number; lastError: string[] | null; current: { version: number; files: string[]; summary: Record<string, number> } | null };
  ready: boolean;
  options: { namespace: string; configDir: string };
}

async function dump(agent: Awaited<ReturnType<typeof startTestAgent>>): Promise<ConfigDump> {
  return JSON.parse((await adminGet(agent, '/config_dump')).body) as ConfigDump;
}

test('an invalid change is refused with every problem logged, the last good config stays, a fixed one is applied', async (t) => {
  const server = await httpServer(t);
  const resolve = ['api', 'other'].map((h) => ({ host: `${h}.example.test`, port: server.port, address: '127.0.0.1' }));
  const agent = await startTestAgent(t, { files: { 'api.yaml': serviceEntry('api', ['api.example.test'], [{ number: server.port, protocol: 'HTTP' }]) }, config: { resolve } });
  t.is(await statusThroughProxy(agent.proxyPort, 'api.example.test', server.port), 200);

  const broken = join(agent.configDir, 'other.yaml');
  await writeFile(broken, serviceEntry('other', ['other.example.test'], [{ number: 70000, protocol: 'HTTP' }, { number: 81, protocol: 'BOGUS' }]));
  await agent.logs.find((l) => l.msg === 'config rejected, keeping the last good one', 'the rejection');
  const afterBad = await dump(agent);
  t.like(afterBad.config, { reloads: 1, failures: 1, current: { version: 1 } });
  t.is(afterBad.config.lastError?.length, 2);
  const logged = agent.logs.items.filter((l) => l.msg === 'config rejected, keeping the last good one').map((l) => String(l.problem));
  t.deepEqual(logged, afterBad.config.lastError);
  t.regex(logged[0]!, new RegExp(`^${broken}:\\d+:\\d+: ServiceEntry/default/other: spec\\.ports\\[0\\]\\.number`));
  t.regex(logged[1]!, /spec\.ports\[1\]\.protocol/);
  t.true(afterBad.ready, 'still ready on the last good config');
  t.is(await statusThroughProxy(agent.proxyPort, 'api.example.test', server.port), 200);
  t.is(await statusThroughProxy(agent.proxyPort, 'other.example.test', server.port), 403);

  await writeFile(broken, serviceEntry('other', ['other.example.test'], [{ number: server.port, protocol: 'HTTP' }]));
  await agent.logs.find((l) => l.msg === 'config applied' && l.version === 2, 'the fixed config');
  const fixed = await dump(agent);
  t.like(fixed.config, { reloads: 2, failures: 1, lastError: null, current: { version: 2, summary: { serviceEntries: 2 } } });
  t.deepEqual(fixed.config.current?.files, [join(agent.configDir, 'api.yaml'), broken]);
  t.is(await statusThroughProxy(agent.proxyPort, 'other.example.test', server.port), 200);

  const metrics = (await adminGet(agent, '/stats/prometheus')).body;
  t.regex(metrics, /^egressd_agent_config_reloads_total 2$/m);
  t.regex(metrics, /^egressd_agent_config_reload_failures_total 1$/m);
});

test('removing a file is a change too', async (t) => {
  const server = await httpServer(t);
  const agent = await startTestAgent(t, {
    files: { 'api.yaml': serviceEntry('api', ['api.example.test'], [{ number: server.port, protocol: 'HTTP' }]) },
    config: { resolve: [{ host: 'api.example.test', port: server.port, address: '127.0.0.1' }] },
  });
  await rm(join(agent.configDir, 'api.yaml'));
  await agent.logs.find((l) => l.msg === 'config applied' && l.version === 2, 'the emptied config');
  t.is(await statusThroughProxy(agent.proxyPort, 'api.example.test', server.port), 403);
});

test('without a valid config the agent is not ready and refuses everything (fail closed) until one arrives', async (t) => {
  const server = await httpServer(t);
  const agent = await startTestAgent(t, {
    files: { 'api.yaml': 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: api}\nspec: {hosts: []}\n' },
    config: { resolve: [{ host: 'api.example.test', port: server.port, address: '127.0.0.1' }] },
  });
  const ready = await adminGet(agent, '/healthz/ready');
  t.is(ready.status, 503);
  t.regex(ready.body, /no valid config loaded/);
  t.is(await statusThroughProxy(agent.proxyPort, 'api.example.test', server.port), 403);
  const record = await agent.audit.find(() => true);
  t.like(record, { decision: 'deny', reason: 'config_not_loaded', host: 'api.example.test' });

  await writeFile(join(agent.configDir, 'api.yaml'), serviceEntry('api', ['api.example.test'], [{ number: server.port, protocol: 'HTTP' }]));
  await eventually(async () => ((await adminGet(agent, '/healthz/ready')).status === 200 ? true : undefined), 'readiness');
  t.is(await statusThroughProxy(agent.proxyPort, 'api.example.test', server.port), 200);
});
