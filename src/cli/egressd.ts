import { dispatch, type CommandEntry } from './dispatch.ts';

/** The daemons and the demo, one subcommand each (`egressd <command>`); errors exit 1, usage errors 2. */
const COMMANDS: Record<string, CommandEntry> = {
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
    summary: 'allowed and denied requests and their audit records: on loopback (no root), or --transparent in a real pod network namespace (root)',
    load: async () => (await import('../demo/demo.ts')).runDemoCommand,
  },
};

export function main(argv: string[]): Promise<number> {
  return dispatch({ name: 'egressd', commands: COMMANDS, failureExitCode: 1 }, argv);
}
