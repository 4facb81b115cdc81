/**
 * The agent's DNS proxy: answers ServiceEntry names from the allowlist
 * (addresses, STATIC endpoints, stable VIPs), forwards the rest to the pod's
 * nameservers with a cache, refuses names no rule allows (REGISTRY_ONLY),
 * and remembers which name each address was given for.
 */
export { Attribution, type Attributed, type AttributedName, type AttributionJudgement } from './attribution.ts';
export { DNS_DEFAULTS, dnsProxyConfig, type DnsProxyConfig } from './config.ts';
export type { DnsPolicy, LocalRecord } from './local-names.ts';
export { startDnsProxy, type DestinationName, type DnsProxyHandle, type DnsProxyRuntime } from './proxy.ts';
export { parseResolvConf, readResolvConf, type ResolvConf } from './resolv-conf.ts';
export { allocateVips, VIP_RANGES, type Vip, type VipTable } from './vip.ts';
