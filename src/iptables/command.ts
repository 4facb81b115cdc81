import { formatOptions, parseCommand, processEnv } from '../core/options.ts';
import { INIT_OPTION_SPECS, toBackend, toInitOptions, type Backend, type InitOptions } from './options.ts';
import { renderCleanup, renderInstall } from './render.ts';
import { applyRestore, readState, toolsFor } from './restore.ts';
import { buildRules, type Family } from './rules.ts';

const USAGE = `usage: egressd init [--dry-run] [--cleanup] [flags]

Installs (or with --cleanup removes) the iptables rules of a pod's network
namespace: outbound TCP to the agent's transparent proxy, DNS to its DNS port,
other UDP and other protocols rejected, the agent's own traffic untouched.
Each family is applied in one iptables-restore transaction; running it again
replaces the rules instead of adding to them.

flags:
${formatOptions(INIT_OPTION_SPECS)}
`;

const FAMILIES: readonly Family[] = ['ipv4', 'ipv6'];

/**
 * What --dry-run prints: both families' restore input, assuming a namespace
 * without egressd rules (install) or with exactly these rules (cleanup).
 */
export function dryRunText(options: InitOptions, backend: Backend, cleanup: boolean): string {
  return FAMILIES.map((family) => {
    const rules = buildRules(options, family);
    const text = cleanup ? renderCleanup(rules) : renderInstall(rules);
    return `# ${family} ${cleanup ? 'cleanup' : 'install'} (dry run): ${toolsFor(backend, family).restore} --noflush\n${text}`;
  }).join('');
}

/** `egressd init`: returns the exit code; errors are thrown as EgressdError (EGRESSD_ERR_USAGE, EGRESSD_ERR_IPTABLES). */
export async function runInitCommand(argv: string[], env: Readonly<Record<string, string | undefined>> = processEnv()): Promise<number> {
  const { options: flags, positionals } = parseCommand('egressd init', INIT_OPTION_SPECS, argv, env);
  if (flags.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length > 0) {
    process.stderr.write(`egressd init: unexpected argument "${positionals[0]}"\n\n${USAGE}`);
    return 2;
  }
  const options = toInitOptions(flags);
  const backend = toBackend(flags.backend);
  if (flags['dry-run']) {
    process.stdout.write(dryRunText(options, backend, flags.cleanup));
    return 0;
  }
  const verb = flags.cleanup ? 'cleanup' : 'install';
  for (const family of FAMILIES) {
    const tools = toolsFor(backend, family);
    const rules = buildRules(options, family);
    const saved = await readState(tools);
    const text = flags.cleanup ? renderCleanup(rules, saved) : renderInstall(rules, saved);
    if (text === '') {
      process.stdout.write(`# ${family} ${verb}: nothing to do\n`);
      continue;
    }
    await applyRestore(tools, text);
    process.stdout.write(`# ${family} ${verb} applied: ${tools.restore} --noflush\n${text}`);
  }
  return 0;
}
