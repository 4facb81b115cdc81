import { formatOptions, parseCommand, processEnv } from '../core/options.ts';
import { INIT_OPTION_SPECS, toBackend, toInitOptions } from './options.ts';
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
 * Pod specs are written `--ipv6=false`; node's parseArgs only knows `--no-ipv6`
 * for booleans, so `--flag=true|false` of a boolean flag is spelled that way first.
 */
function booleanAssignments(argv: readonly string[]): string[] {
  return argv.map((arg) => {
    const m = /^--([a-z0-9-]+)=(true|false)$/i.exec(arg);
    const spec = m ? (INIT_OPTION_SPECS as Record<string, { type: string }>)[m[1]!] : undefined;
    if (!m || spec?.type !== 'boolean') return arg;
    return m[2]!.toLowerCase() === 'true' ? `--${m[1]}` : `--no-${m[1]}`;
  });
}

/** `egressd init`: returns the exit code; errors are thrown as EgressdError (EGRESSD_ERR_USAGE, EGRESSD_ERR_IPTABLES). */
export async function runInitCommand(argv: string[], env: Readonly<Record<string, string | undefined>> = processEnv()): Promise<number> {
  const { options: flags, positionals } = parseCommand('egressd init', INIT_OPTION_SPECS, booleanAssignments(argv), env);
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
  const verb = flags.cleanup ? 'cleanup' : 'install';
  for (const family of FAMILIES) {
    const tools = toolsFor(backend, family);
    const rules = buildRules(options, family);
    if (flags['dry-run']) {
      const text = flags.cleanup ? renderCleanup(rules) : renderInstall(rules);
      process.stdout.write(`# ${family} ${verb} (dry run): ${tools.restore} --noflush\n${text}`);
      continue;
    }
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
