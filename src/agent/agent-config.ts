import { isIP } from 'node:net';
import { EgressdError } from '../core/errors.ts';
import { parseHostPort } from '../core/net.ts';
import type { ResolveOverride } from '../core/resolve-override.ts';
import { dnsProxyConfig, type DnsProxyConfig } from '../dns/index.ts';
import type { ConnectToEntry } from './connect-to.ts';
import { identityProblems, type AgentIdentityConfig } from './identity.ts';

/**
 * Everything an agent is told, as plain values: validated and frozen by
 * agentConfig(), documented once here and in docs/agent.md. What it needs
 * to run (logger, metrics registry, the original-destination stage...) is
 * the AgentRuntime, next to startAgent.
 */
export interface AgentConfig {
  /** Directory of the allowlist (ServiceEntry, DestinationRule, Sidecar YAML), watched for changes. */
  configDir: string;
  /** Transparent listener that iptables redirects outbound TCP to. 0 picks a free port (tests). */
  outboundPort: number;
  /** Addresses of the transparent listener: both wildcards, since REDIRECT keeps the family and rewrites to the interface address. */
  outboundBind: readonly string[];
  /** Explicit proxy (HTTPS_PROXY) port. */
  proxyPort: number;
  /** Admin port (/healthz/ready, /stats/prometheus, /config_dump). */
  adminPort: number;
  /** Address of the explicit proxy and admin listeners. */
  bind: string;
  /** The workload's namespace (policy exportTo, Sidecar scopes). */
  namespace: string;
  /** The workload's labels (workloadSelector, Sidecar selection). */
  labels: Readonly<Record<string, string>>;
  /** Append audit records to this file as well as stdout. */
  auditLog?: string;
  /** Write audit records to stdout. */
  auditStdout: boolean;
  /** Wait this long for a client's first bytes before letting the destination IP decide (server-first protocols), unless the port is declared client-first (peek-window.ts). */
  peekTimeoutMs: number;
  /** Once a ClientHello or request head has started, how long it may take to complete; also the wait for the first bytes on a port declared client-first. */
  sniffTimeoutMs: number;
  /** Close spliced connections idle this long. */
  idleTimeoutMs: number;
  /** Give up connecting upstream after this long. */
  connectTimeoutMs: number;
  /** On shutdown, how long open connections may take to finish before they are cut. */
  drainMs: number;
  /** curl-style overrides for names the agent resolves: host[:port] -> address (`--resolve`). */
  resolve: readonly ResolveOverride[];
  /** curl-style rewrites of where the agent connects: HOST1:PORT1 -> HOST2:PORT2 (`--connect-to`), first match wins. */
  connectTo: readonly ConnectToEntry[];
  /** Period of the config directory's fallback change check. */
  reloadIntervalMs: number;
  /** Workload identity (a SPIFFE certificate from the CA); absent: no certificate, and readiness does not wait for one. */
  identity?: AgentIdentityConfig;
  /**
   * The DNS proxy that `egressd init` redirects port 53 to (docs/dns.md); absent: none
   * (in-process tests, `--dns=false`). Its answers name the destinations of
   * connections that carry no SNI or Host.
   */
  dns?: Readonly<DnsProxyConfig>;
  /** Send allowed traffic through the egress gateway (mTLS with the workload certificate); absent: direct. */
  gateway?: AgentGatewayConfig;
}

export interface AgentGatewayConfig {
  /** Gateway replicas, `host:port` each; a name stands for every address it resolves to. */
  addresses: readonly string[];
  /** SPIFFE IDs the gateway may present; empty: its certificate must name the host it is reached by. */
  identities: readonly string[];
}

export const AGENT_DEFAULTS: Readonly<AgentConfig> = Object.freeze({
  configDir: '/etc/egressd/config',
  outboundPort: 15001,
  outboundBind: Object.freeze(['0.0.0.0', '::']),
  proxyPort: 15080,
  adminPort: 15000,
  bind: '127.0.0.1',
  namespace: 'default',
  labels: Object.freeze({}),
  auditStdout: true,
  peekTimeoutMs: 200,
  sniffTimeoutMs: 5000,
  idleTimeoutMs: 3_600_000,
  connectTimeoutMs: 10_000,
  drainMs: 5000,
  resolve: Object.freeze([]),
  connectTo: Object.freeze([]),
  reloadIntervalMs: 10_000,
});

const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Defaults filled in, every bad value reported at once, the result frozen. */
export function agentConfig(overrides: Partial<AgentConfig>): Readonly<AgentConfig> {
  const config: AgentConfig = { ...AGENT_DEFAULTS, ...overrides };
  const problems: string[] = [];
  for (const key of ['outboundPort', 'proxyPort', 'adminPort'] as const) {
    const port = config[key];
    if (!Number.isInteger(port) || port < 0 || port > 65535) problems.push(`${key}: ${port} is not a port (0-65535)`);
  }
  for (const key of ['peekTimeoutMs', 'sniffTimeoutMs', 'idleTimeoutMs', 'connectTimeoutMs', 'reloadIntervalMs'] as const) {
    if (!Number.isInteger(config[key]) || config[key] <= 0) problems.push(`${key}: ${config[key]} must be a positive integer`);
  }
  if (!Number.isInteger(config.drainMs) || config.drainMs < 0) problems.push(`drainMs: ${config.drainMs} must be zero or more`);
  for (const address of [config.bind, ...config.outboundBind]) {
    if (isIP(address) === 0) problems.push(`bind address "${address}" is not an IP address`);
  }
  if (config.outboundBind.length === 0) problems.push('outboundBind: at least one address');
  if (!NAMESPACE.test(config.namespace)) problems.push(`namespace "${config.namespace}" is not a Kubernetes namespace name`);
  if (config.configDir === '') problems.push('configDir is empty');
  if (config.identity !== undefined) problems.push(...identityProblems(config.identity, config.namespace).map((p) => `identity: ${p}`));
  if (config.gateway !== undefined) problems.push(...gatewayProblems(config.gateway, config.identity !== undefined));
  let dns: Readonly<DnsProxyConfig> | undefined;
  if (config.dns !== undefined) {
    try {
      dns = dnsProxyConfig(config.dns);
    } catch (err) {
      problems.push(...((err as EgressdError).context.problems as string[]).map((p) => `dns: ${p}`));
    }
  }
  if (problems.length > 0) {
    throw new EgressdError('EGRESSD_ERR_USAGE', `invalid agent configuration: ${problems.join('; ')}`, { context: { problems } });
  }
  return Object.freeze({
    ...config,
    outboundBind: Object.freeze([...config.outboundBind]),
    labels: Object.freeze({ ...config.labels }),
    resolve: Object.freeze(config.resolve.map((e) => Object.freeze({ ...e }))),
    connectTo: Object.freeze(config.connectTo.map((e) => Object.freeze({ from: Object.freeze({ ...e.from }), to: Object.freeze({ ...e.to }) }))),
    ...(config.identity === undefined ? {} : { identity: Object.freeze({ ...config.identity }) }),
    ...(config.gateway === undefined
      ? {}
      : { gateway: Object.freeze({ addresses: Object.freeze([...config.gateway.addresses]), identities: Object.freeze([...config.gateway.identities]) }) }),
    ...(dns === undefined ? {} : { dns }),
  });
}

/** Worded for the flags that set them (--egress-gateway, --gateway-identity). */
function gatewayProblems(gateway: AgentGatewayConfig, hasIdentity: boolean): string[] {
  const problems: string[] = [];
  if (!hasIdentity) problems.push('--egress-gateway needs a workload identity for mTLS to the gateway: set --ca-address (with --token-file and --ca-root-cert)');
  if (gateway.addresses.length === 0) problems.push('--egress-gateway: at least one host:port');
  for (const address of gateway.addresses) {
    try {
      parseHostPort(address);
    } catch {
      problems.push(`--egress-gateway "${address}" is not host:port`);
    }
  }
  for (const id of gateway.identities) {
    if (!/^spiffe:\/\/[^/\s]+\/\S*$/.test(id)) problems.push(`--gateway-identity "${id}" is not a SPIFFE ID (spiffe://<trust-domain>/...)`);
  }
  return problems;
}
