import { dispatch, type CommandEntry } from './dispatch.ts';

/**
 * The operator's command line. Each subcommand parses its own argv, writes
 * its output and returns the exit code; this file only dispatches. Exit
 * codes: 0 success, 1 a negative answer (invalid allowlist, denied
 * destination), 2 the command could not run (usage, unreadable input).
 */
const COMMANDS: Record<string, CommandEntry> = {
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

export function main(argv: string[]): Promise<number> {
  return dispatch({ name: 'egressctl', commands: COMMANDS, failureExitCode: 2 }, argv);
}
