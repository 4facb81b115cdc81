import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { egressctl, ROOT } from './run-egressctl.ts';

const GOLDEN = join(ROOT, 'test/fixtures/invalid/expected-stderr.txt');

test('the deploy examples are valid: exit 0, one summary line, nothing on stderr', async (t) => {
  const run = await egressctl(['validate', 'deploy/examples']);
  t.is(run.code, 0, run.stderr);
  t.is(run.stderr, '');
  t.is(run.stdout, 'valid: 12 resources (7 ServiceEntry, 1 DestinationRule, 4 Sidecar), 9 hosts, 0 warnings in 7 files\n');
});

test('the broken samples: exit 1, every problem on stderr exactly as in the golden file', async (t) => {
  const run = await egressctl(['validate', 'test/fixtures/invalid']);
  t.is(run.code, 1);
  // UPDATE_GOLDEN=1 npx ava test/unit/cli/validate.test.ts rewrites the golden file after a deliberate change.
  if (process.env.UPDATE_GOLDEN === '1') await writeFile(GOLDEN, run.stderr);
  t.is(run.stderr, await readFile(GOLDEN, 'utf8'));
  t.is(run.stdout, 'invalid: 32 errors, 2 warnings in 10 files; 5 valid resources (2 ServiceEntry, 1 DestinationRule, 2 Sidecar), 1 host\n');
});

test('every error line has the form path:line:col: Kind/namespace/name: field: message', async (t) => {
  const run = await egressctl(['validate', 'test/fixtures/invalid/ports.yaml']);
  const lines = run.stderr.trim().split('\n');
  t.true(lines.length > 0);
  for (const line of lines) t.regex(line, /^test\/fixtures\/invalid\/ports\.yaml:\d+:\d+: ServiceEntry\/billing\/partner-api: spec\.ports\[\d\]\.\w+: .+$/);
  t.true(lines.includes('test/fixtures/invalid/ports.yaml:14:15: ServiceEntry/billing/partner-api: spec.ports[1].number: must be between 1 and 65535'));
});

test('--output json reports problems as objects on stdout and keeps the exit code', async (t) => {
  const run = await egressctl(['validate', '--output', 'json', 'test/fixtures/invalid/wildcard-dns.yaml']);
  t.is(run.code, 1);
  t.is(run.stderr, '');
  const report = JSON.parse(run.stdout) as { valid: boolean; summary: Record<string, number>; errors: Record<string, unknown>[] };
  t.false(report.valid);
  t.is(report.summary.errors, 2);
  t.deepEqual(report.errors[0], {
    severity: 'error',
    file: 'test/fixtures/invalid/wildcard-dns.yaml',
    line: 9,
    col: 7,
    resource: 'ServiceEntry/web/cdn',
    field: 'spec.hosts[0]',
    message: 'wildcard host "*.cdn.example.com" cannot be resolved with resolution DNS; use resolution NONE',
  });
});

test('--help, and --output json of a valid allowlist', async (t) => {
  const run = await egressctl(['validate', '-h']);
  t.is(run.code, 0);
  t.regex(run.stdout, /usage: egressctl validate/);
  const json = await egressctl(['validate', '--output=json', 'deploy/examples/demo-api.yaml']);
  t.is(json.code, 0);
  t.like(JSON.parse(json.stdout), { valid: true, summary: { resources: 1, serviceEntries: 1, hosts: 1, errors: 0, warnings: 0 }, errors: [] });
});

test('warnings do not make an allowlist invalid: exit 0, each warning names its field', async (t) => {
  const run = await egressctl(['validate', 'test/fixtures/warnings']);
  t.is(run.code, 0);
  t.is(run.stdout, 'valid: 2 resources (1 ServiceEntry, 1 DestinationRule, 0 Sidecar), 1 host, 3 warnings in 1 file\n');
  t.deepEqual(run.stderr.trim().split('\n'), [
    'test/fixtures/warnings/unimplemented.yaml:14:13: warning: ServiceEntry/billing/legacy-partner: spec.location: MESH_INTERNAL has no effect in egressd: every ServiceEntry is an external destination',
    'test/fixtures/warnings/unimplemented.yaml:18:7: warning: ServiceEntry/billing/legacy-partner: spec.endpoints[0].weight: not implemented by egressd; ignored (endpoints are tried in order)',
    'test/fixtures/warnings/unimplemented.yaml:28:5: warning: DestinationRule/billing/legacy-partner: spec.trafficPolicy.connectionPool: not implemented by egressd; ignored (egressd does its own connection handling)',
  ]);
});

test('an unreadable path is an error problem naming it: exit 1', async (t) => {
  const run = await egressctl(['validate', 'deploy/examples/demo-api.yaml', 'no/such/file.yaml']);
  t.is(run.code, 1);
  t.is(run.stderr, 'no/such/file.yaml: cannot read: no such file or directory\n');
});

test('usage errors exit 2 and say what is wrong', async (t) => {
  for (const args of [['validate'], ['validate', '--output', 'xml', 'x.yaml'], ['validate', '--nope', 'x.yaml'], ['frobnicate'], []]) {
    const run = await egressctl(args);
    t.is(run.code, 2, args.join(' '));
    t.not(run.stderr + run.stdout, '', args.join(' '));
  }
  t.regex((await egressctl(['validate'])).stderr, /^egressctl validate: give at least one file or directory \(EGRESSD_ERR_USAGE\)/);
});
