import { EgressdError } from '../core/errors.ts';
import { formatOptions, parseCommand, processEnv, type OptionSpecs } from '../core/options.ts';
import { runExplicitDemo } from './explicit.ts';

/** Flags of `egressd demo` (`npm run demo -- <flags>`). */
export const DEMO_OPTIONS = {
  transparent: { type: 'boolean', default: false, description: 'needs root: a real pod network namespace with egressd init rules; the application has no proxy settings' },
  'netns-prefix': { type: 'string', env: 'EGRESSD_DEMO_NETNS_PREFIX', default: 'egdemo-', description: 'with --transparent: name prefix of the two network namespaces it creates and deletes' },
  help: { type: 'boolean', short: 'h', default: false, description: 'show this help' },
} as const satisfies OptionSpecs;

const USAGE = `usage: egressd demo [--transparent [--netns-prefix PREFIX]]

Without flags: everything embedded on loopback, no root, no cluster: the
control plane signing the agent's and the egress gateway's certificates, the
agent as explicit proxy sending allowed requests through the gateway (TLS
passed through, plain HTTP originated as HTTPS), denied requests, and both
components' audit records.
--transparent: the agent alone (no gateway), with real network namespaces and iptables.

flags:
${formatOptions(DEMO_OPTIONS)}
`;

/** Namespace names are `<prefix><random>` within Linux's 15 characters, and go on `ip` command lines. */
const NETNS_PREFIX = /^[a-z0-9][a-z0-9-]{0,10}$/;

export const NEEDS_ROOT =
  'egressd demo --transparent needs root: it creates two network namespaces (a pod and the internet behind it), ' +
  "installs egressd init's iptables rules in the pod's, and runs egressd agent there as UID 1337 and the application's curl as UID 1000; " +
  'all of it is deleted at the end. Run it as root: sudo npm run demo -- --transparent (or npm run demo without root: the explicit-proxy demo).';

export async function runDemoCommand(argv: string[], env: Readonly<Record<string, string | undefined>> = processEnv()): Promise<number> {
  const { options, positionals } = parseCommand('egressd demo', DEMO_OPTIONS, argv, env);
  if (options.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length > 0) throw new EgressdError('EGRESSD_ERR_USAGE', `unexpected argument "${positionals[0]}"; the demo takes only flags`);
  if (!NETNS_PREFIX.test(options['netns-prefix'])) {
    throw new EgressdError('EGRESSD_ERR_USAGE', `--netns-prefix: "${options['netns-prefix']}" must be 1 to 11 of a-z, 0-9 and "-", starting with a letter or digit`);
  }
  if (!options.transparent) return runExplicitDemo();
  if (process.getuid?.() !== 0) {
    process.stderr.write(`${NEEDS_ROOT}\n`);
    return 2;
  }
  const { runTransparentDemo } = await import('./transparent.ts');
  return runTransparentDemo({ netnsPrefix: options['netns-prefix'] });
}
