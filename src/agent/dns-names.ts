import type { DestinationName } from '../dns/index.ts';
import type { Destination } from './outbound.ts';
import type { NamedHost } from './decide.ts';
import { sniffedNames, sniffedProtocol, type Pipeline } from './pipeline.ts';
import type { Sniffed } from './sniff.ts';

/**
 * The name stage of the transparent path: what the DNS proxy's answers say
 * about the address a connection was dialled to.
 *
 * - A virtual IP stands for exactly one host, and nothing listens on it: the
 *   connection is decided on that host, whatever else it carries (an SNI or
 *   Host must agree with it, else `host_mismatch`), and routed by name.
 * - An address the proxy handed out names the connection only when the
 *   client named nothing itself (no SNI, no Host: server-first and raw TCP
 *   protocols). Several names may claim one address; the judgement is
 *   conservative (src/dns/attribution.ts): the connection is decided on a
 *   refused one if there is any.
 */

/** What the outbound path needs from the DNS proxy (DnsProxyHandle). */
export interface DnsNames {
  vipHost(address: string): string | undefined;
  nameFor(address: string, allowed: (host: string) => boolean): DestinationName | undefined;
}

export interface DnsNaming {
  /** Names to decide on, before the sniffed ones (empty: the DNS proxy knows nothing about the address). */
  names: NamedHost[];
  /** The destination is a virtual IP: dial the decided host, never the address. */
  vip: boolean;
}

const NOTHING: DnsNaming = { names: [], vip: false };

/** The name the DNS proxy last gave `address` for (a VIP's host), before anything is sniffed: only to choose how long to wait. */
export function dnsNameOf(pipeline: Pipeline, address: string): string | undefined {
  return pipeline.dns?.nameFor(address, () => true)?.host;
}

export function namesFromDns(pipeline: Pipeline, dst: Destination, sniffed: Sniffed): DnsNaming {
  const dns = pipeline.dns;
  if (dns === undefined) return NOTHING;
  const vip = dns.vipHost(dst.address);
  if (vip !== undefined) return { names: [{ source: 'dns', name: vip }], vip: true };
  if (sniffedNames(sniffed).length > 0) return NOTHING;
  const policy = pipeline.policy();
  const protocol = sniffedProtocol(sniffed);
  const { namespace, labels } = pipeline.identity;
  // Allowed as the decide stage will judge it: on this port and address; REPORT's would-deny counts as refused.
  const allowed = (host: string): boolean => {
    if (policy === undefined) return false;
    const d = policy.decide({ host, port: dst.port, address: dst.address, protocol, sourceNamespace: namespace, workloadLabels: labels });
    return d.allow && !d.wouldDeny;
  };
  const found = dns.nameFor(dst.address, allowed);
  return found === undefined ? NOTHING : { names: [{ source: 'dns', name: found.host }], vip: false };
}
