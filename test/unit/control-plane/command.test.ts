import test from 'ava';
import { controlPlaneConfig } from '../../../src/control-plane/command.ts';
import { parseDuration } from '../../../src/core/duration.ts';

test('flags and defaults become the config; env vars fill in', (t) => {
  const config = controlPlaneConfig(['--state-dir', '/tmp/x', '--max-validity', '30d', '--listen', '127.0.0.1:0'], { EGRESSD_TRUST_DOMAIN: 'corp.example' });
  if (config === 'help') return t.fail();
  t.deepEqual(config.listen, { host: '127.0.0.1', port: 0 });
  t.deepEqual(config.policy, { trustDomain: 'corp.example', defaultValiditySeconds: 86_400, maxValiditySeconds: 30 * 86_400 });
  t.deepEqual(config.tokens, { kind: 'local', issuer: 'egressd-control-plane' });
  t.is(config.audience, 'egressd');
});

test('every problem is reported at once', (t) => {
  const err = t.throws(() => controlPlaneConfig(['--ca-cert', 'c.pem', '--token-verifier', 'magic', '--default-validity', 'soon', '--trust-domain', 'Bad'], {}));
  t.is((err as { code?: string }).code, 'EGRESSD_ERR_USAGE');
  const problems = (err as unknown as { context: { problems: string[] } }).context.problems;
  t.is(problems.length, 4);
  t.regex(err!.message, /--ca-cert and --ca-key go together/);
  t.regex(err!.message, /--token-verifier/);
  t.regex(err!.message, /--default-validity/);
  t.regex(err!.message, /--trust-domain/);
});

test('durations', (t) => {
  t.is(parseDuration('90d', 'x'), 90 * 86_400);
  t.is(parseDuration('1h30m', 'x'), 5400);
  t.is(parseDuration('45', 'x'), 45);
  t.throws(() => parseDuration('1 hour', 'x'), { code: 'EGRESSD_ERR_USAGE' });
  t.throws(() => parseDuration('', 'x'), { code: 'EGRESSD_ERR_USAGE' });
});
