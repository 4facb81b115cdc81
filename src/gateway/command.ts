import { hostname } from 'node:os';
import { createAuditSink } from '../core/audit.ts';
import { EgressdError, errorMessage } from '../core/errors.ts';
import { parseCidr, type Cidr } from '../core/ip-ranges.ts';
import { createLogger } from '../core/logger.ts';
import { parseHostPort } from '../core/net.ts';
import { formatOptions, parseCommand, processEnv, type OptionSpecs } from '../core/options.ts';
import { parseResolveOverride } from '../core/resolve-override.ts';
import { onShutdown } from '../core/shutdown.ts';
import { identityProblem } from '../pki/spiffe.ts';
import { startGateway, type GatewayConfig } from './gateway.ts';

/** Flags of `egressd gateway`, each with the environment variable a Deployment can set instead. */
export const GATEWAY_OPTIONS = {
  listen: { type: 'string', env: 'EGRESSD_GATEWAY_LISTEN', default: '0.0.0.0:15008', description: 'mTLS tunnel listener, host:port ([::]:15008 for both families)' },
  'admin-listen': { type: 'string', env: 'EGRESSD_ADMIN_LISTEN', default: '0.0.0.0:15000', description: 'admin listener (/healthz/ready, /stats/prometheus, /config_dump), host:port' },
  cert: { type: 'string', env: 'EGRESSD_GATEWAY_CERT', description: "the gateway's certificate chain (PEM), reloaded on change" },
  key: { type: 'string', env: 'EGRESSD_GATEWAY_KEY', description: "the gateway's private key (PEM), reloaded on change" },
  'trust-bundle': { type: 'string', env: 'EGRESSD_TRUST_BUNDLE', description: 'CA certificates agent certificates must chain to (PEM), reloaded on change' },
  'trust-domain': { type: 'string', env: 'EGRESSD_TRUST_DOMAIN', default: 'cluster.local', description: 'SPIFFE trust domain of the callers' },
  'config-dir': { type: 'string', env: 'EGRESSD_CONFIG_DIR', default: '/etc/egressd/config', description: 'allowlist directory (ServiceEntry, DestinationRule, Sidecar YAML), reloaded on change' },
  'credentials-dir': { type: 'string', env: 'EGRESSD_CREDENTIALS_DIR', description: 'DestinationRule credentialName secrets: DIR/<name>/{tls.crt,tls.key,ca.crt}' },
  replica: { type: 'string', env: 'POD_NAME', description: "this replica's name in audit records (default: the host name)" },
  'allow-private-cidrs': { type: 'list', env: 'EGRESSD_ALLOW_PRIVATE_CIDRS', description: 'labs only: CIDRs in forbidden ranges (private, loopback, ...) the gateway may dial for any allowed host' },
  resolve: { type: 'list', env: 'EGRESSD_RESOLVE', description: 'host:port:address or host:address, resolve host to address without DNS (like curl --resolve)' },
  'connect-timeout-ms': { type: 'integer', env: 'EGRESSD_CONNECT_TIMEOUT_MS', default: 5000, description: 'timeout of each connection attempt to a destination address' },
  'idle-timeout-seconds': { type: 'integer', env: 'EGRESSD_IDLE_TIMEOUT_SECONDS', default: 3600, description: 'close tunnels idle this long' },
  'reload-interval-ms': { type: 'integer', env: 'EGRESSD_RELOAD_INTERVAL_MS', default: 2000, description: 'how often the allowlist and credential files are checked for changes (0: never)' },
  'drain-seconds': { type: 'integer', env: 'EGRESSD_DRAIN_SECONDS', default: 5, description: 'on SIGTERM, let open tunnels finish this long' },
  'audit-log': { type: 'string', env: 'EGRESSD_AUDIT_LOG', description: 'also append audit records (JSON lines) to this file' },
  'log-level': { type: 'string', env: 'EGRESSD_LOG_LEVEL', default: 'info', description: 'trace, debug, info, warn, error' },
  help: { type: 'boolean', short: 'h', default: false, description: 'show this help' },
} as const satisfies OptionSpecs;

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** Validates the flags into a GatewayConfig, naming every bad flag at once. */
export function gatewayConfigFromArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = processEnv()): { config: GatewayConfig; logLevel: string; auditLog: string | undefined; drainMs: number } {
  const { options, positionals } = parseCommand('egressd gateway', GATEWAY_OPTIONS, argv, env);
  const problems: string[] = [];
  const attempt = <T>(what: string, fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (err) {
      problems.push(`${what}: ${errorMessage(err)}`);
      return undefined;
    }
  };
  if (positionals.length > 0) problems.push(`unexpected argument "${positionals[0]}"`);
  for (const flag of ['cert', 'key', 'trust-bundle'] as const) {
    if (options[flag] === undefined) problems.push(`--${flag} is required`);
  }
  if (!LOG_LEVELS.includes(options['log-level'])) problems.push(`--log-level: "${options['log-level']}" is not one of ${LOG_LEVELS.join(', ')}`);
  const trustProblem = identityProblem({ trustDomain: options['trust-domain'], namespace: 'ns', serviceAccount: 'sa' });
  if (trustProblem) problems.push(`--trust-domain: ${trustProblem}`);
  const listen = attempt('--listen', () => parseListen(options.listen));
  const admin = attempt('--admin-listen', () => parseListen(options['admin-listen']));
  const resolve = (options.resolve ?? []).map((r) => attempt('--resolve', () => parseResolveOverride(r))).filter((r) => r !== undefined);
  const cidrs: Cidr[] = [];
  for (const text of options['allow-private-cidrs'] ?? []) {
    const cidr = parseCidr(text);
    if (cidr) cidrs.push(cidr);
    else problems.push(`--allow-private-cidrs: "${text}" is not an IP address or CIDR`);
  }
  for (const flag of ['connect-timeout-ms', 'idle-timeout-seconds'] as const) {
    if (options[flag] <= 0) problems.push(`--${flag} must be positive`);
  }
  for (const flag of ['reload-interval-ms', 'drain-seconds'] as const) {
    if (options[flag] < 0) problems.push(`--${flag} must not be negative`);
  }
  if (problems.length > 0) throw new EgressdError('EGRESSD_ERR_USAGE', `egressd gateway: ${problems.join('; ')}`, { context: { problems } });
  const config: GatewayConfig = {
    listen: listen!,
    admin: admin!,
    trustDomain: options['trust-domain'],
    replica: options.replica ?? hostname(),
    credentials: { certFile: options.cert ?? '', keyFile: options.key ?? '', trustBundleFile: options['trust-bundle'] ?? '' },
    configPaths: [options['config-dir']],
    allowPrivateCidrs: cidrs,
    resolve,
    connectTimeoutMs: options['connect-timeout-ms'],
    idleTimeoutMs: options['idle-timeout-seconds'] * 1000,
    reloadIntervalMs: options['reload-interval-ms'],
  };
  if (options['credentials-dir'] !== undefined) config.credentialsDir = options['credentials-dir'];
  return { config, logLevel: options['log-level'], auditLog: options['audit-log'], drainMs: options['drain-seconds'] * 1000 };
}

/** host:port, where port 0 asks for any free port (tests, several replicas on one host). */
function parseListen(value: string): { host: string; port: number } {
  const any = /^(.+):0$/.exec(value);
  return any ? { host: parseHostPort(`${any[1]}:1`).host, port: 0 } : parseHostPort(value);
}

export async function runGatewayCommand(argv: string[], env: Readonly<Record<string, string | undefined>> = processEnv()): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`usage: egressd gateway --cert FILE --key FILE --trust-bundle FILE [flags]\n\n${formatOptions(GATEWAY_OPTIONS)}\n`);
    return 0;
  }
  const { config, logLevel, auditLog, drainMs } = gatewayConfigFromArgs(argv, env);
  const logger = createLogger('gateway', { level: logLevel });
  const audit = createAuditSink({
    component: 'gateway',
    ...(auditLog === undefined ? {} : { file: auditLog }),
    onError: (err) => logger.error({ err: errorMessage(err) }, 'audit log write failed'),
  });
  let gateway;
  try {
    gateway = await startGateway(config, { logger, audit });
  } catch (err) {
    await audit.close();
    throw err;
  }
  const { port } = gateway.address();
  logger.info({ listen: `${config.listen.host}:${port}`, admin: config.admin ? `${config.admin.host}:${gateway.adminAddress()?.port}` : null, replica: config.replica }, 'gateway ready');
  const running = gateway;
  return new Promise<number>((resolve) => {
    onShutdown(async (signal) => {
      logger.info({ signal, drainMs }, 'shutting down');
      await running.close(drainMs);
      await audit.close();
      resolve(0);
      return 0;
    });
  });
}
