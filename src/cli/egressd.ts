import { EgressdError, errorMessage } from '../core/errors.ts';

/** A daemon subcommand: parses its own argv, returns the exit code when it is done. */
type Command = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  agent: {
    summary: 'per-pod sidecar: transparent and explicit proxy, allowlist enforcement, audit',
    load: async () => (await import('../agent/command.ts')).runAgentCommand,
  },
  init: {
    summary: 'init container: install (or --cleanup) the pod iptables rules that redirect egress to the agent',
    load: async () => (await import('../iptables/command.ts')).runInitCommand,
  },
  gateway: {
    summary: 'egress gateway: mTLS tunnels from agents, re-decided with the caller identity, TLS origination, audit',
    load: async () => (await import('../gateway/command.ts')).runGatewayCommand,
  },
  'control-plane': {
    summary: 'CA for workload identities: Istio certificate API (gRPC/TLS), service-account tokens, SPIFFE IDs',
    load: async () => (await import('../control-plane/command.ts')).runControlPlaneCommand,
  },
  demo: {
    summary: 'run everything embedded on loopback (no root, no cluster): allowed and denied requests, their audit records',
    load: async () => (await import('../demo/demo.ts')).runDemoCommand,
  },
};

const USAGE = `usage: egressd <command> [flags]\n\ncommands:\n${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(14)} ${c.summary}`)
  .join('\n')}\n\nRun "egressd <command> --help" for the flags of a command.`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`egressd: unknown command "${name}"\n\n${USAGE}\n`);
    return 2;
  }
  try {
    return await (await command.load())(rest);
  } catch (err) {
    const code = err instanceof EgressdError ? err.code : 'unexpected';
    process.stderr.write(`egressd ${name}: ${errorMessage(err)} (${code})\n`);
    return err instanceof EgressdError && err.code === 'EGRESSD_ERR_USAGE' ? 2 : 1;
  }
}
