import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { AuditSink } from '../core/audit.ts';
import { createLogger, type Logger } from '../core/logger.ts';
import { createMetricsRegistry } from '../core/metrics.ts';
import type { HostPort } from '../core/net.ts';
import { Attribution } from './attribution.ts';
import { DnsCache } from './cache.ts';
import type { DnsProxyConfig } from './config.ts';
import { Forwarder } from './forwarder.ts';
import { answerQuery, type DnsState } from './handler.ts';
import { judgeName } from './judge.ts';
import { listenDns, type QueryHandler } from './listeners.ts';
import { LocalNames, type DnsPolicy } from './local-names.ts';
import { createDnsMetrics } from './metrics.ts';
import { readResolvConf, type ResolvConf } from './resolv-conf.ts';
import { Upstreams } from './upstream.ts';

/**
 * The agent's DNS proxy: config in, answers out, and what the answers said
 * kept for the outbound path (which name an address was given for, which
 * host a VIP stands for).
 */

/** What the proxy runs with, as opposed to what it is told (DnsProxyConfig). */
export interface DnsProxyRuntime {
  /** The allowlist in force; undefined until one is loaded (names are then SERVFAIL; cluster names still go through). */
  policy: () => DnsPolicy | undefined;
  /** The workload: namespace for exportTo and Sidecar scopes, labels for selectors. */
  identity: { namespace: string; labels: Readonly<Record<string, string>> };
  /** The agent's audit sink: denied queries (and REPORT's would-deny) are recorded there. */
  audit: AuditSink;
  logger?: Logger;
  /** Metrics go here; a registry of its own when absent. */
  registry?: Registry;
  /** Epoch milliseconds; tests move time without sleeping. */
  now?: () => number;
}

/** The name behind a destination address, for a connection that carried none. */
export interface DestinationName {
  host: string;
  /** What the caller's predicate said (for every name claiming the address, see Attribution.judge). */
  allowed: boolean;
  /** `vip`: an address the proxy allocated, which stands for exactly this host. `dns`: an answer the proxy gave. */
  source: 'vip' | 'dns';
  names: readonly string[];
}

export interface DnsProxyHandle {
  addresses: { udp: AddressInfo[]; tcp: AddressInfo[] };
  /** Where answers come from when the proxy does not answer itself. */
  upstreams: readonly HostPort[];
  /** The resolv.conf read at start; undefined when upstreams were given in the config. */
  resolvConf: ResolvConf | undefined;
  /** Address -> the names the proxy answered it for, while their TTLs last. */
  attribution: Attribution;
  /** The host a VIP stands for under the current allowlist (the outbound path routes it by that name). */
  vipHost(address: string): string | undefined;
  /** The name to decide a nameless connection to `address` on: its VIP's host, else the names DNS answered it for. */
  nameFor(address: string, allowed: (host: string) => boolean): DestinationName | undefined;
  registry: Registry;
  close(): Promise<void>;
}

export async function startDnsProxy(config: Readonly<DnsProxyConfig>, runtime: DnsProxyRuntime): Promise<DnsProxyHandle> {
  const logger = runtime.logger ?? createLogger('dns');
  const registry = runtime.registry ?? createMetricsRegistry({ processMetrics: false });
  const now = runtime.now ?? Date.now;
  const resolvConf = config.upstreams === undefined ? await readResolvConf(config.resolvConf) : undefined;
  const servers = config.upstreams ?? resolvConf!.nameservers.map((host) => ({ host, port: 53 }));
  const cache = new DnsCache({ maxEntries: config.cacheSize, maxTtlSeconds: config.cacheMaxTtlSeconds, now });
  const attribution = new Attribution({ maxAddresses: config.attributionSize, minTtlSeconds: config.attributionMinTtlSeconds, now });
  const metrics = createDnsMetrics(registry, { cache: () => cache.size, attribution: () => attribution.size });
  const upstreams = new Upstreams({
    servers,
    timeoutMs: config.upstreamTimeoutMs,
    attempts: resolvConf?.attempts ?? 2,
    observe: (seconds, transport) => metrics.upstreamDuration.observe({ transport }, seconds),
  });

  let memo: { policy: DnsPolicy; local: LocalNames } | undefined;
  const local = (): LocalNames | undefined => {
    const policy = runtime.policy();
    if (policy === undefined) return undefined;
    if (memo?.policy !== policy) {
      memo = { policy, local: new LocalNames(policy.destinations(), { autoAllocate: config.autoAllocate }) };
      if (memo.local.vips.unallocated.length > 0) logger.warn({ hosts: memo.local.vips.unallocated.length }, 'VIP range exhausted; these hosts are forwarded');
    }
    return memo.local;
  };
  const { namespace, labels } = runtime.identity;
  const state: DnsState = {
    judge: (name) => judgeName(name, { policy: runtime.policy(), local: local(), namespace, labels, clusterDomain: config.clusterDomain }),
    namespace,
    denyRcode: config.denyRcode,
    localTtlSeconds: config.localTtlSeconds,
    forwarder: new Forwarder({ upstreams, cache, metrics }),
    cache,
    attribution,
    audit: runtime.audit,
    metrics,
    logger,
    now,
  };
  const broken = (err: unknown): undefined => {
    logger.error({ err }, 'DNS query handling failed');
    return undefined;
  };
  const handle: QueryHandler = (packet, client) => {
    try {
      const reply = answerQuery(state, packet, client);
      return reply instanceof Promise ? reply.catch(broken) : reply;
    } catch (err) {
      return broken(err);
    }
  };

  let listeners;
  try {
    listeners = await listenDns(config, handle, logger);
  } catch (err) {
    upstreams.close();
    throw err;
  }
  for (const [transport, list] of [['udp', listeners.udp], ['tcp', listeners.tcp]] as const) {
    for (const a of list) logger.info({ listener: 'dns', transport, address: a.address, port: a.port }, 'listening');
  }
  logger.info(
    { upstreams: servers, search: resolvConf?.search, ndots: resolvConf?.ndots, warnings: resolvConf?.warnings },
    'forwarding names exactly as clients send them (clients apply search and ndots)',
  );

  const vipHost = (address: string): string | undefined => local()?.vips.hostOf(address);
  let closing: Promise<void> | undefined;
  return {
    addresses: { udp: listeners.udp, tcp: listeners.tcp },
    upstreams: servers,
    resolvConf,
    attribution,
    vipHost,
    nameFor(address, allowed) {
      const vip = vipHost(address);
      if (vip !== undefined) return { host: vip, allowed: allowed(vip), source: 'vip', names: [vip] };
      const judged = attribution.judge(address, allowed);
      return judged === undefined ? undefined : { ...judged, source: 'dns' };
    },
    registry,
    close: () =>
      (closing ??= (async () => {
        await listeners.close();
        upstreams.close();
        cache.clear();
      })()),
  };
}
