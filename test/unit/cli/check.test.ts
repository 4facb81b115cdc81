import test from 'ava';
import { egressctl } from './run-egressctl.ts';

const EXAMPLES = ['--config', 'deploy/examples'];

test('an allowed destination: exit 0, the rule, its file position, no TLS origination', async (t) => {
  const run = await egressctl(['check', ...EXAMPLES, '--namespace', 'payments', '--labels', 'app=checkout', 'api.stripe.com']);
  t.is(run.code, 0, run.stderr);
  t.is(run.stderr, '');
  t.is(
    run.stdout,
    [
      'ALLOW api.stripe.com:443 from namespace payments (labels app=checkout): allowed_by_rule',
      '  mode:      REGISTRY_ONLY (Sidecar/payments/default)',
      '  rule:      ServiceEntry/payments/stripe-api host api.stripe.com port 443/TLS (deploy/examples/payments-stripe.yaml:3:1)',
      "  tls:       not originated (the client's bytes pass through as they are)",
      '  upstream:  resolution DNS, port 443',
      '',
    ].join('\n'),
  );
});

test('a denied destination: exit 1 and the closest rule with why it did not match', async (t) => {
  const run = await egressctl(['check', ...EXAMPLES, 'api.stripe.com:443']);
  t.is(run.code, 1);
  t.is(
    run.stdout,
    [
      'DENY api.stripe.com:443 from namespace default: not_exported',
      '  mode:      REGISTRY_ONLY (Sidecar/istio-system/default)',
      '  closest rules that did not match:',
      '    ServiceEntry/payments/stripe-api (api.stripe.com, deploy/examples/payments-stripe.yaml:3:1): exportTo [. (payments)] does not include namespace default',
      '',
    ].join('\n'),
  );
});

test('TLS origination: the port and SNI the gateway would use, and who asked for it', async (t) => {
  const viaRule = await egressctl(['check', ...EXAMPLES, 'api.openweathermap.org:80']);
  t.is(viaRule.code, 0);
  t.regex(viaRule.stdout, /\n {2}tls: {7}originate SIMPLE to port 443, SNI api\.openweathermap\.org \(DestinationRule\/default\/weather-api-tls\)\n/);
  const viaPort = await egressctl(['check', ...EXAMPLES, 'api.frankfurter.app:80']);
  t.regex(viaPort.stdout, /\n {2}tls: {7}originate SIMPLE to port 443, SNI api\.frankfurter\.app \(ServiceEntry\/default\/exchange-rates\)\n/);
});

test('wildcards: a name under the suffix is allowed, the apex is denied with the reason', async (t) => {
  t.is((await egressctl(['check', ...EXAMPLES, 'my-bucket.s3.amazonaws.com'])).code, 0);
  const apex = await egressctl(['check', ...EXAMPLES, '--namespace', 'analytics', 'storage.googleapis.com:80']);
  t.is(apex.code, 1);
  t.regex(apex.stdout, /port 80 is not declared \(ports: 443\/TLS\)/);
});

test('REPORT mode: allowed (exit 0) but flagged as would-be denied', async (t) => {
  const run = await egressctl(['check', ...EXAMPLES, '--namespace', 'staging', 'unknown.example.org']);
  t.is(run.code, 0);
  t.regex(run.stdout, /^ALLOW \(REPORT mode: would be denied\) unknown\.example\.org:443 from namespace staging: no_matching_rule\n/);
});

test('an IP and port match ServiceEntry addresses', async (t) => {
  const run = await egressctl(['check', ...EXAMPLES, '--namespace', 'orders', '10.40.8.20:5432']);
  t.is(run.code, 0);
  t.regex(run.stdout, /rule: {6}ServiceEntry\/orders\/orders-postgres address 10\.40\.8\.0\/24 port 5432\/TCP/);
});

test('--output json: the whole explanation as one object', async (t) => {
  const run = await egressctl(['check', ...EXAMPLES, '--output', 'json', '--namespace', 'analytics', '--labels', 'app=batch,team=data', 'example.org:8080']);
  t.is(run.code, 0);
  const out = JSON.parse(run.stdout) as Record<string, unknown>;
  t.like(out, {
    input: { host: 'example.org', port: 8080, sourceNamespace: 'analytics', workloadLabels: { app: 'batch', team: 'data' } },
    decision: { allow: true, wouldDeny: false, reason: 'allow_any', mode: 'ALLOW_ANY', sidecar: 'Sidecar/analytics/batch-open' },
    nearMisses: [],
  });
});

test('an invalid allowlist cannot answer: exit 2 with its errors', async (t) => {
  const run = await egressctl(['check', '--config', 'test/fixtures/invalid/ports.yaml', 'api.partner.example']);
  t.is(run.code, 2);
  t.is(run.stdout, '');
  t.regex(run.stderr, /^test\/fixtures\/invalid\/ports\.yaml:14:15: ServiceEntry\/billing\/partner-api: spec\.ports\[1\]\.number: must be between 1 and 65535\n/);
  t.regex(run.stderr, /egressctl check: the allowlist has 6 errors; run egressctl validate\n$/);
});

test('usage errors exit 2', async (t) => {
  const cases = [
    ['check', 'api.example.test'],
    ['check', ...EXAMPLES],
    ['check', ...EXAMPLES, 'a.example', 'b.example'],
    ['check', ...EXAMPLES, 'api.example.test:0'],
    ['check', ...EXAMPLES, 'api.example.test:http'],
    ['check', ...EXAMPLES, '--labels', 'app', 'api.example.test'],
    ['check', ...EXAMPLES, '--output', 'yaml', 'api.example.test'],
  ];
  for (const args of cases) {
    const run = await egressctl(args);
    t.is(run.code, 2, args.join(' '));
    t.regex(run.stderr, /\(EGRESSD_ERR_USAGE\)/, args.join(' '));
  }
});

test('--help prints the flags', async (t) => {
  const run = await egressctl(['check', '--help']);
  t.is(run.code, 0);
  t.regex(run.stdout, /usage: egressctl check --config PATH/);
  t.regex(run.stdout, /--labels/);
});
