import test from 'ava';
import { TeardownStack, withTeardown } from '../../../src/lab/teardown.ts';

test('cleanups run last-registered first, each once, and a failing one does not stop the others', async (t) => {
  const stack = new TeardownStack();
  const ran: string[] = [];
  stack.teardown(() => ran.push('namespace'));
  stack.teardown(() => {
    throw new Error('process already gone');
  });
  stack.teardown(async () => ran.push('agent'));
  t.deepEqual(await stack.run(), ['process already gone']);
  t.deepEqual(ran, ['agent', 'namespace']);
  t.deepEqual(await stack.run(), []);
  t.deepEqual(ran, ['agent', 'namespace']);
});

test('withTeardown cleans up when the body throws, and reports cleanup failures', async (t) => {
  const ran: string[] = [];
  const warnings: string[] = [];
  await t.throwsAsync(
    withTeardown(async (td) => {
      td.teardown(() => ran.push('namespace'));
      td.teardown(() => Promise.reject(new Error('ip netns del failed')));
      throw new Error('curl missing');
    }, (m) => warnings.push(m)),
    { message: 'curl missing' },
  );
  t.deepEqual(ran, ['namespace']);
  t.deepEqual(warnings, ['cleanup: ip netns del failed']);
});

test('withTeardown returns the body value after cleaning up', async (t) => {
  const ran: string[] = [];
  const value = await withTeardown(async (td) => {
    td.teardown(() => ran.push('done'));
    return 7;
  }, t.fail);
  t.is(value, 7);
  t.deepEqual(ran, ['done']);
});
