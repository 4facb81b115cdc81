/**
 * The one way e2e files declare their tests: serially where network
 * namespaces can be made (root, `ip netns`), else skipped, with one passing
 * test saying why so a skipped file is visible in the run. Call it with
 * top-level await: ava decides skips at declaration time.
 */
import test from 'ava';
import { canRunNetns } from '../../../src/lab/netns.ts';

export async function netnsTests(prefix: string, skippedTitle: string): Promise<typeof test.serial | typeof test.skip> {
  const netns = await canRunNetns(prefix);
  if (netns.ok) return test.serial;
  test(skippedTitle, (t) => {
    t.log(`skipping: ${netns.reason}`);
    t.pass();
  });
  return test.skip;
}
