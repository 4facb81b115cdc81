import { parseDuration } from '../core/duration.ts';
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER, loadTokenSigningKey, mintServiceAccountToken } from '../control-plane/service-account-token.ts';
import { EgressdError } from '../core/errors.ts';
import { formatOptions, parseCommand } from '../core/options.ts';
import { identityProblem } from '../pki/spiffe.ts';

export const TOKEN_OPTIONS = {
  namespace: { type: 'string', description: 'Kubernetes namespace of the workload' },
  'service-account': { type: 'string', description: 'service account of the workload' },
  ttl: { type: 'string', default: '1h', description: 'token lifetime (e.g. 10m, 1h, 1d)' },
  audience: { type: 'list', env: 'EGRESSD_TOKEN_AUDIENCE', default: [DEFAULT_AUDIENCE], description: 'audiences ("aud")' },
  issuer: { type: 'string', env: 'EGRESSD_TOKEN_ISSUER', default: DEFAULT_ISSUER, description: 'issuer ("iss"), as the control plane expects it' },
  'signing-key': { type: 'string', env: 'EGRESSD_TOKEN_SIGNING_KEY', description: 'the control plane\'s ES256 token key file' },
  'state-dir': { type: 'string', env: 'EGRESSD_STATE_DIR', description: 'the control plane\'s --state-dir (holds token-signing-key.pem)' },
  help: { type: 'boolean', short: 'h', default: false, description: 'show this help' },
} as const;

/**
 * `egressctl token`: mints a service-account token signed by the control plane's own
 * token key, for running agents outside a cluster (demo, tests). Prints it on stdout.
 */
export async function runTokenCommand(argv: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const { options: o } = parseCommand('token', TOKEN_OPTIONS, argv);
  if (o.help) {
    out.write(`usage: egressctl token --namespace NS --service-account SA [--ttl 1h] [--signing-key FILE | --state-dir DIR]\n\n${formatOptions(TOKEN_OPTIONS)}\n`);
    return 0;
  }
  const problems: string[] = [];
  if (!o.namespace) problems.push('--namespace is required');
  if (!o['service-account']) problems.push('--service-account is required');
  if (o.namespace && o['service-account']) {
    const problem = identityProblem({ trustDomain: 'x', namespace: o.namespace, serviceAccount: o['service-account'] });
    if (problem) problems.push(problem);
  }
  if (!o['signing-key'] && !o['state-dir']) problems.push('give --signing-key FILE or --state-dir DIR');
  let ttlSeconds = 0;
  try {
    ttlSeconds = parseDuration(o.ttl, '--ttl');
    if (ttlSeconds < 1) problems.push('--ttl must be at least 1s');
  } catch (err) {
    problems.push((err as Error).message);
  }
  if (problems.length > 0) throw new EgressdError('EGRESSD_ERR_USAGE', `${problems.join('; ')}`, { context: { problems } });
  const key = await loadTokenSigningKey({
    ...(o['signing-key'] ? { file: o['signing-key'] } : {}),
    ...(o['state-dir'] ? { stateDir: o['state-dir'] } : {}),
  });
  out.write(
    `${mintServiceAccountToken(key, { namespace: o.namespace!, serviceAccount: o['service-account']!, audiences: o.audience, issuer: o.issuer, ttlSeconds })}\n`,
  );
  return 0;
}
