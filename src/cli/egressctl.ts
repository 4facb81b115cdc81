import { EgressdError, errorMessage } from '../core/errors.ts';

/**
 * The operator's command line. Each subcommand parses its own argv, writes
 * its output and returns the exit code; this file only dispatches. Exit
 * codes: 0 success, 1 a negative answer (invalid allowlist, denied
 * destination), 2 the command could not run (usage, unreadable input).
 */
type Command = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  validate: {
    summary: 'check allowlist files (ServiceEntry, DestinationRule, Sidecar): every problem with file:line:col',
    load: async () => (await import('./validate-command.ts')).runValidateCommand,
  },
  check: {
    summary: 'would HOST[:PORT] be allowed from a namespace/workload, by which rule, with TLS origination?',
    load: async () => (await import('./check-command.ts')).runCheckCommand,
  },
  status: {
    summary: "a running agent at a glance: readiness, config, listeners, certificate, connections (exit 1 not ready)",
    load: async () => (await import('./status-command.ts')).runStatusCommand,
  },
  token: {
    summary: 'mint a service-account token signed by the control plane\'s own key (demo and tests outside a cluster)',
    load: async () => (await import('./token-command.ts')).runTokenCommand,
  },
};

const USAGE = `usage: egressctl <command> [flags]\n\ncommands:\n${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(14)} ${c.summary}`)
  .join('\n')}\n\nRun "egressctl <command> --help" for the flags of a command.`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    process.stderr.write(`egressctl: unknown command "${name}"\n\n${USAGE}\n`);
    return 2;
  }
  try {
    return await (await command.load())(rest);
  } catch (err) {
    const code = err instanceof EgressdError ? err.code : 'unexpected';
    const hint = code === 'EGRESSD_ERR_USAGE' ? `\nRun "egressctl ${name} --help" for its flags.` : '';
    process.stderr.write(`egressctl ${name}: ${errorMessage(err)} (${code})${hint}\n`);
    return 2;
  }
}
