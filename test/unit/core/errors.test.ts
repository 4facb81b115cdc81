import test from 'ava';
import { readFileSync } from 'node:fs';
import { ERROR_CODES, EgressdError } from '../../../src/core/errors.ts';

const documented = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');

for (const code of Object.keys(ERROR_CODES)) {
  test(`error code ${code} is documented in docs/errors.md`, (t) => {
    t.true(documented.includes(`\`${code}\``));
  });
}

test('docs/errors.md lists no code that does not exist', (t) => {
  const listed = [...documented.matchAll(/`(EGRESSD_ERR_[A-Z0-9_]+)`/g)].map((m) => m[1]);
  t.deepEqual(listed.filter((c) => !(c! in ERROR_CODES)), []);
});

test('an EgressdError keeps its code, context and cause', (t) => {
  const cause = new Error('boom');
  const err = new EgressdError('EGRESSD_ERR_UPSTREAM', 'dial failed', { cause, context: { dst: '1.2.3.4:443' } });
  t.is(err.code, 'EGRESSD_ERR_UPSTREAM');
  t.is(err.cause, cause);
  t.deepEqual(err.context, { dst: '1.2.3.4:443' });
  t.true(Object.isFrozen(err.context));
});
