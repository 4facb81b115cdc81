import { readFileSync } from 'node:fs';
import { EgressdError } from '../core/errors.ts';
import { createLogger } from '../core/logger.ts';
import { parseDuration } from '../core/duration.ts';
import { formatOptions, parseCommand, processEnv, type OptionSpecs, type ParsedCommand } from '../core/options.ts';
import { parseResolveOverride } from '../core/resolve-override.ts';
import { DNS_DEFAULTS, type DnsProxyConfig } from '../dns/index.ts';
import { onShutdown } from '../core/shutdown.ts';
import { startAgent } from './agent.ts';
import { AGENT_DEFAULTS, agentConfig, type AgentGatewayConfig } from './agent-config.ts';
import { parseConnectTo } from './connect-to.ts';
import { IDENTITY_DEFAULTS, type AgentIdentityConfig } from './identity.ts';
import { parseLabelPairs, parseLabelsFile } from './labels.ts';

/** Flags of `egressd agent`, each with the environment variable a pod spec can set instead. */
export const AGENT_OPTIONS = {
  'config-dir': { type: 'string', env: 'EGRESSD_CONFIG_DIR', default: AGENT_DEFAULTS.configDir, description: 'allowlist directory (ServiceEntry, DestinationRule, Sidecar YAML), reloaded on change' },
  'outbound-port': { type: 'integer', env: 'EGRESSD_OUTBOUND_PORT', default: AGENT_DEFAULTS.outboundPort, description: 'transparent listener port (iptables REDIRECT target), on 0.0.0.0 and ::' },
  'proxy-port': { type: 'integer', env: 'EGRESSD_PROXY_PORT', default: AGENT_DEFAULTS.proxyPort, description: 'explicit proxy port (HTTPS_PROXY=http://127.0.0.1:<port>)' },
  'admin-port': { type: 'integer', env: 'EGRESSD_ADMIN_PORT', default: AGENT_DEFAULTS.adminPort, description: 'admin port: /healthz/ready, /stats/prometheus, /config_dump, /certs' },
  bind: { type: 'string', env: 'EGRESSD_BIND', default: AGENT_DEFAULTS.bind, description: 'address of the explicit proxy and admin listeners' },
  namespace: { type: 'string', env: 'POD_NAMESPACE', default: AGENT_DEFAULTS.namespace, description: "the workload's namespace" },
  labels: { type: 'list', env: 'EGRESSD_LABELS', description: "the workload's labels, key=value,..." },
  'labels-file': { type: 'string', env: 'EGRESSD_LABELS_FILE', description: 'downward API labels file (key="value" lines); --labels add to it' },
  'audit-log': { type: 'string', env: 'EGRESSD_AUDIT_LOG', description: 'also append audit records (JSON lines) to this file' },
  'peek-timeout-ms': { type: 'integer', env: 'EGRESSD_PEEK_TIMEOUT_MS', default: AGENT_DEFAULTS.peekTimeoutMs, description: 'wait for the first client bytes this long before deciding on the destination IP alone (ports declared HTTP/HTTPS/HTTP2/GRPC/TLS wait the 5 s sniff timeout)' },
  'idle-timeout-seconds': { type: 'integer', env: 'EGRESSD_IDLE_TIMEOUT_SECONDS', default: AGENT_DEFAULTS.idleTimeoutMs / 1000, description: 'close connections idle this long' },
  'drain-seconds': { type: 'integer', env: 'EGRESSD_DRAIN_SECONDS', default: AGENT_DEFAULTS.drainMs / 1000, description: 'on SIGTERM, let open connections finish this long' },
  resolve: { type: 'list', env: 'EGRESSD_RESOLVE', description: 'host:port:address (or host:address for every port), resolve host to address without DNS (like curl --resolve); repeatable' },
  'connect-to': { type: 'list', env: 'EGRESSD_CONNECT_TO', description: 'HOST1:PORT1:HOST2:PORT2, connect to HOST2:PORT2 where the agent would connect to HOST1:PORT1 (like curl --connect-to); repeatable' },
  'ca-address': { type: 'string', env: 'EGRESSD_CA_ADDRESS', description: 'host:port of the CA (egressd control plane, istiod): enables the workload certificate' },
  'ca-server-name': { type: 'string', env: 'EGRESSD_CA_SERVER_NAME', description: "name to verify the CA's certificate against when --ca-address is an IP" },
  'ca-root-cert': { type: 'string', env: 'EGRESSD_CA_ROOT_CERT', default: IDENTITY_DEFAULTS.caRootCert, description: "PEM roots to verify the CA's TLS and the issued chain (re-read at each renewal)" },
  'token-file': { type: 'string', env: 'EGRESSD_TOKEN_FILE', default: IDENTITY_DEFAULTS.tokenFile, description: 'projected service-account token sent to the CA (re-read at each renewal)' },
  'trust-domain': { type: 'string', env: 'EGRESSD_TRUST_DOMAIN', default: IDENTITY_DEFAULTS.trustDomain, description: 'SPIFFE trust domain' },
  'service-account': { type: 'string', env: 'SERVICE_ACCOUNT', default: IDENTITY_DEFAULTS.serviceAccount, description: "the workload's service account (spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>)" },
  'cert-ttl': { type: 'string', env: 'EGRESSD_CERT_TTL', default: '24h', description: 'certificate validity to ask for (24h, 30m, 90s); the CA may cap it' },
  'renew-fraction': { type: 'string', env: 'EGRESSD_RENEW_FRACTION', default: String(IDENTITY_DEFAULTS.renewFraction), description: 'renew once this fraction of the remaining lifetime has passed (0 to 1)' },
  'cert-output-dir': { type: 'string', env: 'EGRESSD_CERT_OUTPUT_DIR', description: 'also write cert-chain.pem, key.pem and root-cert.pem here on each rotation' },
  'egress-gateway': { type: 'list', env: 'EGRESSD_EGRESS_GATEWAY', description: 'host:port of the egress gateway: allowed traffic goes through it (mTLS, needs --ca-address); a name is every address it resolves to; repeatable' },
  'gateway-identity': { type: 'list', env: 'EGRESSD_GATEWAY_IDENTITY', description: "SPIFFE ID the gateway's certificate must carry (instead of the --egress-gateway host name); repeatable" },
  dns: { type: 'boolean', env: 'EGRESSD_DNS', default: true, description: 'answer the pod\'s DNS (egressd init redirects port 53 to --dns-port); --dns=false: no DNS proxy' },
  'dns-port': { type: 'integer', env: 'EGRESSD_DNS_PORT', default: DNS_DEFAULTS.port, description: 'DNS proxy port, UDP and TCP (init\'s --dns-port)' },
  'dns-bind': { type: 'list', env: 'EGRESSD_DNS_BIND', default: DNS_DEFAULTS.bind, description: 'DNS proxy addresses, loopback only (REDIRECT sends DNS to 127.0.0.1 and ::1)' },
  'resolv-conf': { type: 'string', env: 'EGRESSD_RESOLV_CONF', default: DNS_DEFAULTS.resolvConf, description: "the pod's resolv.conf: its nameservers answer what the allowlist does not" },
  'cluster-domain': { type: 'string', env: 'EGRESSD_CLUSTER_DOMAIN', default: DNS_DEFAULTS.clusterDomain, description: 'names under it are forwarded without being judged' },
  'dns-deny-rcode': { type: 'string', env: 'EGRESSD_DNS_DENY_RCODE', default: DNS_DEFAULTS.denyRcode, description: 'answer to a name no ServiceEntry allows: NXDOMAIN or REFUSED' },
  'dns-auto-allocate': { type: 'boolean', env: 'EGRESSD_DNS_AUTO_ALLOCATE', default: DNS_DEFAULTS.autoAllocate, description: 'answer ServiceEntry hosts without addresses with a virtual IP (Istio\'s DNS auto-allocation); connections to it go by name' },
  'log-level': { type: 'string', env: 'EGRESSD_LOG_LEVEL', default: 'info', description: 'trace, debug, info, warn, error' },
  help: { type: 'boolean', short: 'h', default: false, description: 'show this help' },
} as const satisfies OptionSpecs;

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export async function runAgentCommand(argv: string[], env: Readonly<Record<string, string | undefined>> = processEnv()): Promise<number> {
  const { options, positionals } = parseCommand('egressd agent', AGENT_OPTIONS, argv, env);
  if (options.help) {
    process.stdout.write(`usage: egressd agent [flags]\n\n${formatOptions(AGENT_OPTIONS)}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new EgressdError('EGRESSD_ERR_USAGE', `egressd agent: unexpected argument "${positionals[0]}"`);
  if (!LOG_LEVELS.includes(options['log-level'])) {
    throw new EgressdError('EGRESSD_ERR_USAGE', `--log-level: "${options['log-level']}" is not one of ${LOG_LEVELS.join(', ')}`);
  }
  const labels = { ...(options['labels-file'] === undefined ? {} : readLabelsFile(options['labels-file'])), ...parseLabelPairs(options.labels ?? []) };
  const config = agentConfig({
    configDir: options['config-dir'],
    outboundPort: options['outbound-port'],
    proxyPort: options['proxy-port'],
    adminPort: options['admin-port'],
    bind: options.bind,
    namespace: options.namespace,
    labels,
    ...(options['audit-log'] === undefined ? {} : { auditLog: options['audit-log'] }),
    peekTimeoutMs: options['peek-timeout-ms'],
    idleTimeoutMs: options['idle-timeout-seconds'] * 1000,
    drainMs: options['drain-seconds'] * 1000,
    resolve: (options.resolve ?? []).map(parseResolveOverride),
    connectTo: (options['connect-to'] ?? []).map(parseConnectTo),
    ...(options['ca-address'] === undefined ? {} : { identity: identityOptions(options['ca-address'], options) }),
    ...(options.dns ? { dns: dnsOptions(options) } : {}),
    ...gatewayOptions(options),
  });
  const logger = createLogger('agent', { level: options['log-level'] });
  const agent = await startAgent(config, { logger });
  return new Promise<number>((resolve) => {
    onShutdown(async (signal) => {
      logger.info({ signal }, 'shutting down');
      await agent.close();
      resolve(0);
      return 0;
    });
  });
}

function gatewayOptions(options: ParsedCommand<typeof AGENT_OPTIONS>['options']): { gateway?: AgentGatewayConfig } {
  const addresses = options['egress-gateway'] ?? [];
  const identities = options['gateway-identity'] ?? [];
  if (addresses.length === 0) {
    if (identities.length > 0) throw new EgressdError('EGRESSD_ERR_USAGE', '--gateway-identity: only with --egress-gateway');
    return {};
  }
  if (options['ca-address'] === undefined) {
    throw new EgressdError('EGRESSD_ERR_USAGE', '--egress-gateway needs a workload identity for mTLS to the gateway: set --ca-address (with --token-file and --ca-root-cert)');
  }
  return { gateway: { addresses, identities } };
}

function identityOptions(caAddress: string, options: ParsedCommand<typeof AGENT_OPTIONS>['options']): AgentIdentityConfig {
  const renewFraction = Number(options['renew-fraction']);
  if (options['renew-fraction'].trim() === '' || Number.isNaN(renewFraction)) {
    throw new EgressdError('EGRESSD_ERR_USAGE', `--renew-fraction: "${options['renew-fraction']}" is not a number between 0 and 1`);
  }
  return {
    caAddress,
    ...(options['ca-server-name'] === undefined ? {} : { caServerName: options['ca-server-name'] }),
    caRootCert: options['ca-root-cert'],
    tokenFile: options['token-file'],
    trustDomain: options['trust-domain'],
    serviceAccount: options['service-account'],
    certTtlSeconds: parseDuration(options['cert-ttl'], '--cert-ttl'),
    renewFraction,
    ...(options['cert-output-dir'] === undefined ? {} : { certOutputDir: options['cert-output-dir'] }),
  };
}

/** The DNS proxy's settings; agentConfig() validates them with the rest. */
function dnsOptions(options: ParsedCommand<typeof AGENT_OPTIONS>['options']): DnsProxyConfig {
  return {
    ...DNS_DEFAULTS,
    port: options['dns-port'],
    bind: options['dns-bind'],
    resolvConf: options['resolv-conf'],
    clusterDomain: options['cluster-domain'],
    denyRcode: options['dns-deny-rcode'].toUpperCase() as DnsProxyConfig['denyRcode'],
    autoAllocate: options['dns-auto-allocate'],
  };
}

function readLabelsFile(file: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new EgressdError('EGRESSD_ERR_USAGE', `--labels-file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  return parseLabelsFile(text, file);
}
