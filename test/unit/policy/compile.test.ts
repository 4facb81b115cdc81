import test from 'ava';
import { EgressdError } from '../../../src/core/errors.ts';
import { compilePolicy, loadConfig, parseConfigText } from '../../../src/policy/index.ts';

test('an allowlist with errors is refused at compile time with a stable code', (t) => {
  const config = parseConfigText('apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: x}\nspec: {hosts: ["*"], ports: [{number: 1, name: a, protocol: TCP}]}\n', 'bad.yaml');
  const err = t.throws(() => compilePolicy(config), { instanceOf: EgressdError });
  t.is(err?.code, 'EGRESSD_ERR_CONFIG_INVALID');
  t.regex(err?.message ?? '', /bad\.yaml:4:16: ServiceEntry\/default\/x: spec\.hosts\[0\]/);
});

test('the summary counts resources, hosts and addresses of the deploy examples', async (t) => {
  const config = await loadConfig(['deploy/examples']);
  t.deepEqual(config.errors, []);
  t.deepEqual(config.warnings, []);
  const policy = compilePolicy(config);
  t.deepEqual({ ...policy.summary }, { resources: 12, serviceEntries: 7, destinationRules: 1, sidecars: 4, hosts: 9, addresses: 1 });
});

test('destinations list every ServiceEntry with hosts, addresses and ports, for DNS', async (t) => {
  const policy = compilePolicy(await loadConfig(['deploy/examples/demo-api.yaml', 'deploy/examples/tcp-database.yaml']));
  t.deepEqual(policy.destinations(), [
    { rule: 'ServiceEntry/default/demo-api', namespace: 'default', hosts: ['api.example.test'], addresses: [], ports: [443, 80], resolution: 'DNS', endpoints: [], exportTo: ['*'] },
    { rule: 'ServiceEntry/orders/orders-postgres', namespace: 'orders', hosts: ['orders-db.prod.internal'], addresses: ['10.40.8.0/24'], ports: [5432], resolution: 'NONE', endpoints: [], exportTo: ['.'] },
  ]);
});

test('the demo API sample allows api.example.test on 443 and 80 from any namespace', async (t) => {
  const policy = compilePolicy(await loadConfig(['deploy/examples/demo-api.yaml']));
  for (const [port, protocol] of [[443, 'HTTPS'], [80, 'HTTP']] as const) {
    for (const sourceNamespace of ['default', 'egressd-demo']) {
      t.like(policy.decide({ host: 'api.example.test', port, sourceNamespace }), { allow: true, rule: 'ServiceEntry/default/demo-api', protocol, tls: undefined });
    }
  }
  t.like(policy.decide({ host: 'api.example.test', port: 8080, sourceNamespace: 'default' }), { allow: false, reason: 'port_not_allowed' });
});

test('the loaded config is frozen: compiling cannot be undermined by later edits', async (t) => {
  const config = await loadConfig(['deploy/examples/demo-api.yaml']);
  t.true(Object.isFrozen(config));
  t.throws(() => {
    (config.serviceEntries[0]!.hosts as string[]).push('evil.test');
  });
});
