import { EgressdError } from '../core/errors.ts';
import { createLogger } from '../core/logger.ts';
import { parseHostPort } from '../core/net.ts';
import { formatOptions, parseCommand, processEnv } from '../core/options.ts';
import { onShutdown } from '../core/shutdown.ts';
import { identityProblem } from '../pki/spiffe.ts';
import { startControlPlane, type ControlPlaneConfig } from './control-plane.ts';
import { DEFAULT_VALIDITY_SECONDS, MAX_VALIDITY_SECONDS } from './csr-policy.ts';
import { parseDuration } from '../core/duration.ts';
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER } from './service-account-token.ts';

export const CONTROL_PLANE_OPTIONS = {
  listen: { type: 'string', env: 'EGRESSD_CA_LISTEN', default: '0.0.0.0:15012', description: 'gRPC (TLS) address of the CA service; port 0 picks one' },
  'admin-listen': { type: 'string', env: 'EGRESSD_CA_ADMIN_LISTEN', default: '0.0.0.0:15014', description: 'HTTP address of /stats/prometheus and /healthz/ready' },
  'trust-domain': { type: 'string', env: 'EGRESSD_TRUST_DOMAIN', default: 'cluster.local', description: 'SPIFFE trust domain of issued identities' },
  'ca-cert': { type: 'string', env: 'EGRESSD_CA_CERT', description: 'PEM signing certificate (root or intermediate); with --ca-key' },
  'ca-key': { type: 'string', env: 'EGRESSD_CA_KEY', description: 'PEM private key of --ca-cert' },
  'ca-chain': { type: 'string', env: 'EGRESSD_CA_CHAIN', description: 'PEM certificates above --ca-cert (intermediates, optionally the root)' },
  'trust-bundle': { type: 'string', env: 'EGRESSD_TRUST_BUNDLE', description: 'PEM roots workloads trust; several during a root rotation' },
  'state-dir': { type: 'string', env: 'EGRESSD_STATE_DIR', description: 'keeps a self-signed root (when no --ca-cert), the token signing key and trust-bundle.pem' },
  'default-validity': { type: 'string', env: 'EGRESSD_CA_DEFAULT_VALIDITY', default: '24h', description: 'certificate validity when a request asks for none' },
  'max-validity': { type: 'string', env: 'EGRESSD_CA_MAX_VALIDITY', default: '90d', description: 'longest validity granted; longer requests are capped' },
  'token-verifier': { type: 'string', env: 'EGRESSD_TOKEN_VERIFIER', default: 'local', description: 'who vouches for callers: local (our own signed tokens) or kubernetes (TokenReview)' },
  audience: { type: 'string', env: 'EGRESSD_TOKEN_AUDIENCE', default: DEFAULT_AUDIENCE, description: 'audience that callers\' tokens must name' },
  'token-signing-key': { type: 'string', env: 'EGRESSD_TOKEN_SIGNING_KEY', description: 'local tokens: ES256 key file (default <state-dir>/token-signing-key.pem, created)' },
  'token-issuer': { type: 'string', env: 'EGRESSD_TOKEN_ISSUER', default: DEFAULT_ISSUER, description: 'local tokens: expected "iss"' },
  kubeconfig: { type: 'string', env: 'KUBECONFIG', description: 'kubernetes tokens: kubeconfig file (default: in-cluster)' },
  'server-name': { type: 'list', env: 'EGRESSD_CA_SERVER_NAMES', default: ['localhost', 'egressd-control-plane.egressd-system.svc'], description: 'DNS names of the CA\'s TLS certificate' },
  'log-level': { type: 'string', env: 'EGRESSD_LOG_LEVEL', default: 'info', description: 'pino log level' },
  help: { type: 'boolean', short: 'h', default: false, description: 'show this help' },
} as const;

function listenAddress(value: string, flag: string): { host: string; port: number } {
  // Port 0 (pick one) is fine for a listener; parseHostPort is for destinations.
  const zero = /:0$/.test(value);
  try {
    const parsed = parseHostPort(zero ? value.replace(/:0$/, ':1') : value);
    return { host: parsed.host, port: zero ? 0 : parsed.port };
  } catch (err) {
    throw new EgressdError('EGRESSD_ERR_USAGE', `--${flag}: ${(err as Error).message}`, { cause: err });
  }
}

/** Turns flags into a checked ControlPlaneConfig, reporting every problem at once. */
export function controlPlaneConfig(argv: readonly string[], env = processEnv()): ControlPlaneConfig | 'help' {
  const { options: o } = parseCommand('control-plane', CONTROL_PLANE_OPTIONS, argv, env);
  if (o.help) return 'help';
  const problems: string[] = [];
  const attempt = <T>(f: () => T): T | undefined => {
    try {
      return f();
    } catch (err) {
      problems.push((err as Error).message);
      return undefined;
    }
  };
  const listen = attempt(() => listenAddress(o.listen, 'listen'));
  const admin = attempt(() => listenAddress(o['admin-listen'], 'admin-listen'));
  const defaultValidity = attempt(() => parseDuration(o['default-validity'], '--default-validity'));
  const maxValidity = attempt(() => parseDuration(o['max-validity'], '--max-validity'));
  const tdProblem = identityProblem({ trustDomain: o['trust-domain'], namespace: 'x', serviceAccount: 'x' });
  if (tdProblem) problems.push(`--trust-domain: ${tdProblem}`);
  if (defaultValidity !== undefined && maxValidity !== undefined && (defaultValidity < 1 || maxValidity < defaultValidity)) {
    problems.push('--default-validity must be at least 1s and at most --max-validity');
  }
  if (!['local', 'kubernetes'].includes(o['token-verifier'])) problems.push(`--token-verifier: "${o['token-verifier']}" is not local or kubernetes`);
  if ((o['ca-cert'] === undefined) !== (o['ca-key'] === undefined)) problems.push('--ca-cert and --ca-key go together');
  if (o['ca-cert'] === undefined && o['state-dir'] === undefined) problems.push('give --ca-cert and --ca-key, or --state-dir to keep a self-signed root');
  if (o['token-verifier'] === 'local' && o['token-signing-key'] === undefined && o['state-dir'] === undefined) {
    problems.push('local tokens need --token-signing-key or --state-dir');
  }
  if (problems.length > 0) throw new EgressdError('EGRESSD_ERR_USAGE', `${problems.join('; ')}`, { context: { problems } });
  const logger = createLogger('control-plane', { level: o['log-level'] });
  return {
    listen: listen!,
    admin: admin!,
    ca: {
      trustDomain: o['trust-domain'],
      ...(o['ca-cert'] ? { caCertFile: o['ca-cert'] } : {}),
      ...(o['ca-key'] ? { caKeyFile: o['ca-key'] } : {}),
      ...(o['ca-chain'] ? { caChainFile: o['ca-chain'] } : {}),
      ...(o['trust-bundle'] ? { trustBundleFile: o['trust-bundle'] } : {}),
      ...(o['state-dir'] ? { stateDir: o['state-dir'] } : {}),
    },
    policy: { trustDomain: o['trust-domain'], defaultValiditySeconds: defaultValidity ?? DEFAULT_VALIDITY_SECONDS, maxValiditySeconds: maxValidity ?? MAX_VALIDITY_SECONDS },
    audience: o.audience,
    tokens:
      o['token-verifier'] === 'kubernetes'
        ? { kind: 'kubernetes', ...(o.kubeconfig ? { kubeconfigFile: o.kubeconfig } : {}) }
        : { kind: 'local', issuer: o['token-issuer'], ...(o['token-signing-key'] ? { signingKeyFile: o['token-signing-key'] } : {}) },
    serverNames: o['server-name'],
    logger,
  };
}

/** `egressd control-plane`: the CA (Istio's certificate API) until SIGTERM. */
export async function runControlPlaneCommand(argv: string[]): Promise<number> {
  const config = controlPlaneConfig(argv);
  if (config === 'help') {
    process.stdout.write(`usage: egressd control-plane [flags]\n\n${formatOptions(CONTROL_PLANE_OPTIONS)}\n`);
    return 0;
  }
  const controlPlane = await startControlPlane(config);
  return new Promise<number>((resolve) => {
    onShutdown(async (signal) => {
      config.logger.info({ signal }, 'control plane stopping');
      await controlPlane.stop();
      resolve(0);
      return 0;
    });
  });
}
