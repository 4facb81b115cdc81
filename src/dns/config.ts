import { isIP } from 'node:net';
import { EgressdError } from '../core/errors.ts';
import { parseIp } from '../core/ip-ranges.ts';
import { normalizeHost, type HostPort } from '../core/net.ts';

/**
 * What the DNS proxy is told, as plain values: validated and frozen by
 * dnsProxyConfig(), documented here and in docs/dns.md. What it runs with
 * (policy, identity, audit sink, metrics, clock) is the DnsProxyRuntime.
 */
export interface DnsProxyConfig {
  /** Port of the UDP and TCP listeners; `egressd init` redirects port 53 here. 0 picks a free port (tests). */
  port: number;
  /**
   * Listener addresses, loopback only. REDIRECT in the OUTPUT chain rewrites
   * the destination to 127.0.0.1 or ::1, so loopback of both families is
   * enough; an address of a family the host lacks is skipped when another one
   * binds. A wildcard would be wrong, not just wider: a UDP answer from a
   * wildcard socket leaves from the pod's address, which conntrack cannot
   * map back to the nameserver the application asked, so it drops the answer.
   */
  bind: readonly string[];
  /** The pod's original resolv.conf: its nameservers are the upstreams. */
  resolvConf: string;
  /** Upstreams that replace the resolv.conf nameservers (host:port; tests and explicit setups). */
  upstreams?: readonly HostPort[];
  /** Names under it are always forwarded, never judged: the cluster's own services. */
  clusterDomain: string;
  /** Answer to a name no rule allows, in REGISTRY_ONLY. */
  denyRcode: 'NXDOMAIN' | 'REFUSED';
  /** Give ServiceEntry hosts without addresses a stable virtual IP (Istio's DNS auto-allocation). */
  autoAllocate: boolean;
  /** TTL of answers the proxy makes itself (ServiceEntry addresses and virtual IPs). */
  localTtlSeconds: number;
  /** Cached answers at most (least recently used go first). */
  cacheSize: number;
  /** Cap on how long an answer stays cached, whatever its TTL says. */
  cacheMaxTtlSeconds: number;
  /** Addresses remembered for attribution at most (least recently used go first). */
  attributionSize: number;
  /**
   * Attribution outlives a short TTL by this floor: answers with TTL 0 exist,
   * and applications reuse an address a little past its TTL (the JVM caches
   * 30 s). The outbound path would otherwise judge such connections by IP.
   */
  attributionMinTtlSeconds: number;
  /** Wait this long for one upstream before trying the next. */
  upstreamTimeoutMs: number;
  /** Close a client's TCP connection idle this long. */
  tcpIdleTimeoutMs: number;
}

export const DNS_DEFAULTS: Readonly<DnsProxyConfig> = Object.freeze({
  port: 15053,
  bind: Object.freeze(['127.0.0.1', '::1']),
  resolvConf: '/etc/resolv.conf',
  clusterDomain: 'cluster.local',
  denyRcode: 'NXDOMAIN',
  autoAllocate: false,
  localTtlSeconds: 30,
  cacheSize: 10_000,
  cacheMaxTtlSeconds: 86_400,
  attributionSize: 65_536,
  attributionMinTtlSeconds: 30,
  upstreamTimeoutMs: 2000,
  tcpIdleTimeoutMs: 10_000,
});

/** Defaults filled in, every bad value reported at once (EGRESSD_ERR_USAGE), the result frozen. */
export function dnsProxyConfig(overrides: Partial<DnsProxyConfig>): Readonly<DnsProxyConfig> {
  const config: DnsProxyConfig = { ...DNS_DEFAULTS, ...overrides };
  const problems: string[] = [];
  if (!Number.isInteger(config.port) || config.port < 0 || config.port > 65535) problems.push(`port: ${config.port} is not a port (0-65535)`);
  if (config.bind.length === 0) problems.push('bind: at least one address');
  for (const address of config.bind) {
    if (isIP(address) === 0) problems.push(`bind address "${address}" is not an IP address`);
    else if (!isLoopback(address)) problems.push(`bind address "${address}" is not a loopback address (127.0.0.0/8, ::1): answers from another address do not reach redirected clients`);
  }
  for (const upstream of config.upstreams ?? []) {
    if (isIP(upstream.host) === 0) problems.push(`upstream "${upstream.host}" is not an IP address`);
    if (!Number.isInteger(upstream.port) || upstream.port < 1 || upstream.port > 65535) problems.push(`upstream port ${upstream.port} is not a port`);
  }
  if (config.upstreams?.length === 0) problems.push('upstreams: give at least one, or leave it out to use resolv.conf');
  if (config.resolvConf === '') problems.push('resolvConf is empty');
  const clusterDomain = normalizeHost(config.clusterDomain);
  if (clusterDomain === '' || clusterDomain.includes('*') || isIP(clusterDomain) !== 0) problems.push(`clusterDomain "${config.clusterDomain}" is not a DNS name`);
  if (config.denyRcode !== 'NXDOMAIN' && config.denyRcode !== 'REFUSED') problems.push(`denyRcode: "${String(config.denyRcode)}" must be NXDOMAIN or REFUSED`);
  for (const key of ['localTtlSeconds', 'cacheMaxTtlSeconds', 'attributionMinTtlSeconds'] as const) {
    if (!Number.isInteger(config[key]) || config[key] < 0 || config[key] > 2 ** 31 - 1) problems.push(`${key}: ${config[key]} must be an integer from 0 to 2^31-1`);
  }
  for (const key of ['cacheSize', 'attributionSize', 'upstreamTimeoutMs', 'tcpIdleTimeoutMs'] as const) {
    if (!Number.isInteger(config[key]) || config[key] <= 0) problems.push(`${key}: ${config[key]} must be a positive integer`);
  }
  if (problems.length > 0) {
    throw new EgressdError('EGRESSD_ERR_USAGE', `invalid DNS proxy configuration: ${problems.join('; ')}`, { context: { problems } });
  }
  return Object.freeze({
    ...config,
    clusterDomain,
    bind: Object.freeze([...config.bind]),
    ...(config.upstreams === undefined ? {} : { upstreams: Object.freeze(config.upstreams.map((u) => Object.freeze({ ...u }))) }),
  });
}

function isLoopback(address: string): boolean {
  const ip = parseIp(address);
  return ip !== undefined && (ip.family === 4 ? ip.value >> 24n === 127n : ip.value === 1n);
}
