import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { parseCommand, processEnv } from '../../../src/core/options.ts';
import { dryRunText } from '../../../src/iptables/command.ts';
import { INIT_OPTION_SPECS, toInitOptions, type InitOptions } from '../../../src/iptables/options.ts';
import { renderCleanup, renderInstall } from '../../../src/iptables/render.ts';
import { buildRules, type Family } from '../../../src/iptables/rules.ts';
import { canRunNetns, createNetns, execInNetns } from '../../e2e/harness/index.ts';

/**
 * Golden files: the exact restore input `egressd init --dry-run` prints for
 * each option set. Refresh with `UPDATE_GOLDEN=1 npx ava test/unit/iptables/golden.test.ts`
 * and review the diff. Where netns can run, the same text must also be
 * accepted by the real iptables-restore in a throwaway namespace.
 */
const CASES: Record<string, { argv: string[]; env?: Record<string, string> }> = {
  default: { argv: [] },
  exclusions: {
    argv: ['--exclude-cidrs', '10.96.0.0/12,192.168.0.0/16,fd00:10::/64', '--exclude-ports', '5432,6379', '--exclude-uids', '1500,1501', '--agent-gid', '1337'],
  },
  'ipv6-off': { argv: ['--ipv6=false'] },
  'no-dns-redirect': { argv: ['--redirect-dns=false'] },
  'udp-allowed': { argv: ['--reject-udp=false'] },
  'env-ports': { argv: [], env: { EGRESSD_AGENT_UID: '2000', EGRESSD_OUTBOUND_PORT: '16001', EGRESSD_DNS_PORT: '16053', EGRESSD_EXCLUDE_CIDRS: '10.0.0.0/8' } },
  cleanup: { argv: ['--cleanup'] },
  'cleanup-ipv6-off': { argv: ['--cleanup', '--ipv6=false'] },
};

const UPDATE = processEnv().UPDATE_GOLDEN === '1';
const FAMILIES: readonly Family[] = ['ipv4', 'ipv6'];
const PREFIX = 'egi-';
const netns = await canRunNetns(PREFIX);

function parse(argv: string[], env: Record<string, string> = {}): { options: InitOptions; cleanup: boolean } {
  const { options: flags } = parseCommand('egressd init', INIT_OPTION_SPECS, argv, env);
  return { options: toInitOptions(flags), cleanup: flags.cleanup };
}

for (const [name, { argv, env }] of Object.entries(CASES)) {
  test(`golden: ${name}`, async (t) => {
    const { options, cleanup } = parse(argv, env);
    const actual = dryRunText(options, 'default', cleanup);
    const file = new URL(`../../golden/iptables/${name}.rules`, import.meta.url);
    if (UPDATE) await writeFile(file, actual);
    t.is(actual, await readFile(file, 'utf8'), `stale golden file ${name}.rules: rerun with UPDATE_GOLDEN=1 and review the diff`);
  });

  if (argv.includes('--cleanup')) continue;
  (netns.ok ? test.serial : test.skip)(`real iptables-restore accepts ${name}, and its cleanup leaves nothing`, async (t) => {
    const ns = await createNetns(t, PREFIX);
    const { options } = parse(argv, env);
    for (const family of FAMILIES) {
      const [restore, save] = family === 'ipv4' ? ['iptables-restore', 'iptables-save'] : ['ip6tables-restore', 'ip6tables-save'];
      const rules = buildRules(options, family);
      const install = renderInstall(rules);
      const tested = await execInNetns(ns, restore, ['--test', '--noflush'], { input: install });
      t.is(tested.code, 0, `${family} --test: ${tested.stderr}`);
      const applied = await execInNetns(ns, restore, ['--noflush'], { input: install });
      t.is(applied.code, 0, `${family} install: ${applied.stderr}`);
      const listed = (await execInNetns(ns, save, [])).stdout;
      for (const chain of rules.chains) t.true(listed.includes(`:${chain.name} - `), `${family} ${chain.table} ${chain.name}`);
      const cleaned = await execInNetns(ns, restore, ['--noflush'], { input: renderCleanup(rules) });
      t.is(cleaned.code, 0, `${family} cleanup: ${cleaned.stderr}`);
      t.false((await execInNetns(ns, save, [])).stdout.includes('EGRESSD_'), `${family}: cleanup left EGRESSD chains`);
    }
  });
}

if (!netns.ok) {
  test('iptables-restore validation skipped', (t) => {
    t.log(`not validated against real iptables: ${netns.reason}`);
    t.pass();
  });
}
