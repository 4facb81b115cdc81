import test from 'ava';
import { parseCommand } from '../../../src/core/options.ts';

const specs = {
  port: { type: 'integer', env: 'T_PORT', default: 15001, description: 'port' },
  ipv6: { type: 'boolean', env: 'T_IPV6', default: true, description: 'ipv6' },
  cidrs: { type: 'list', env: 'T_CIDRS', default: [] as string[], description: 'cidrs' },
  name: { type: 'string', env: 'T_NAME', description: 'name' },
} as const;

test('flags win over environment variables, which win over defaults', (t) => {
  const { options } = parseCommand('t', specs, ['--port', '9000'], { T_PORT: '8000', T_NAME: 'env-name' });
  t.is(options.port, 9000);
  t.is(options.name, 'env-name');
  t.true(options.ipv6);
  t.deepEqual(options.cidrs, []);
});

test('lists split on commas and repeat', (t) => {
  const { options } = parseCommand('t', specs, ['--cidrs', '10.0.0.0/8,192.168.0.0/16', '--cidrs', '172.16.0.0/12'], {});
  t.deepEqual(options.cidrs, ['10.0.0.0/8', '192.168.0.0/16', '172.16.0.0/12']);
});

test('booleans accept --no-flag and environment words', (t) => {
  t.false(parseCommand('t', specs, ['--no-ipv6'], {}).options.ipv6);
  t.false(parseCommand('t', specs, [], { T_IPV6: 'false' }).options.ipv6);
});

test('every bad value is reported at once, naming flag and variable', (t) => {
  const err = t.throws(() => parseCommand('t', specs, ['--port', 'abc'], { T_IPV6: 'maybe' }));
  t.regex(err!.message, /--port: "abc" is not an integer/);
  t.regex(err!.message, /T_IPV6: "maybe" is not a boolean/);
  t.is((err as { code?: string }).code, 'EGRESSD_ERR_USAGE');
});

test('unknown flags are usage errors', (t) => {
  t.is((t.throws(() => parseCommand('t', specs, ['--bogus'], {})) as { code?: string }).code, 'EGRESSD_ERR_USAGE');
});

test('--flag=true|false spells booleans as manifests write them; other flags keep their =value', (t) => {
  const { options } = parseCommand('t', specs, ['--ipv6=false', '--port=9000'], {});
  t.false(options.ipv6);
  t.is(options.port, 9000);
  t.true(parseCommand('t', specs, ['--ipv6=TRUE'], { T_IPV6: 'false' }).options.ipv6);
});

test('usage errors do not repeat the command name: the dispatcher prints it once', (t) => {
  const err = t.throws(() => parseCommand('egressd init', specs, ['--bogus'], {}));
  t.false(err!.message.includes('egressd init'));
});
