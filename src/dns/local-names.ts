import { isIP } from 'node:net';
import { parseCidr } from '../core/ip-ranges.ts';
import type { Decision, Destination, NameInput } from '../policy/index.ts';
import { canonicalAddress } from './address.ts';
import { allocateVips, type VipTable } from './vip.ts';

/**
 * The names the proxy answers itself, from the allowlist: a ServiceEntry's
 * own `addresses` (host addresses only: a /24 names no single destination),
 * else its STATIC `endpoints`, else (auto-allocation on, an exact host,
 * resolution other than NONE) a VIP that the outbound path routes by name.
 * Resolution NONE means "connect to what the application resolved", so
 * such hosts are forwarded, as Istio does.
 */

/** What the DNS proxy needs from the policy core. */
export interface DnsPolicy {
  decideName(input: NameInput): Decision;
  destinations(): readonly Destination[];
}

export interface LocalRecord {
  ipv4: readonly string[];
  ipv6: readonly string[];
  source: 'addresses' | 'endpoints' | 'vip';
}

export class LocalNames {
  /** VIPs of every eligible host in the allowlist, whichever namespace sees it: the same in every pod. */
  readonly vips: VipTable;
  /** rule -> host pattern -> record: two lookups of strings the policy already holds, no key built per query. */
  readonly #records = new Map<string, Map<string, LocalRecord>>();

  constructor(destinations: readonly Destination[], options: { autoAllocate: boolean }) {
    const wantVip: [string, string][] = [];
    for (const d of destinations) {
      const fixed = hostAddresses(d.addresses);
      const source = fixed.length > 0 ? 'addresses' : d.resolution === 'STATIC' ? 'endpoints' : undefined;
      const addresses = source === 'addresses' ? fixed : source === 'endpoints' ? hostAddresses(d.endpoints.filter((e) => isIP(e) !== 0)) : [];
      for (const pattern of d.hosts) {
        if (addresses.length > 0) this.#add(d.rule, pattern, split(addresses, source!));
        else if (options.autoAllocate && d.addresses.length === 0 && d.resolution !== 'NONE' && !pattern.startsWith('*.')) wantVip.push([d.rule, pattern]);
      }
    }
    this.vips = allocateVips(wantVip.map(([, host]) => host));
    for (const [rule, host] of wantVip) {
      const vip = this.vips.addressesOf(host);
      if (vip !== undefined) this.#add(rule, host, { ipv4: [vip.ipv4], ipv6: [vip.ipv6], source: 'vip' });
    }
  }

  /** The answer for a name that `rule` allowed through its host `pattern`; undefined: ask upstream. */
  lookup(rule: string, pattern: string): LocalRecord | undefined {
    return this.#records.get(rule)?.get(pattern);
  }

  #add(rule: string, pattern: string, record: LocalRecord): void {
    let byPattern = this.#records.get(rule);
    if (byPattern === undefined) this.#records.set(rule, (byPattern = new Map()));
    byPattern.set(pattern, record);
  }
}

/** The single-host entries (bare, /32 or /128), canonical and without duplicates. */
function hostAddresses(list: readonly string[]): string[] {
  const out = new Set<string>();
  for (const text of list) {
    const cidr = parseCidr(text);
    if (cidr === undefined || cidr.prefix !== (cidr.family === 4 ? 32 : 128)) continue;
    const address = canonicalAddress(text.split('/')[0]!);
    if (address !== undefined) out.add(address);
  }
  return [...out];
}

function split(addresses: readonly string[], source: LocalRecord['source']): LocalRecord {
  return { ipv4: addresses.filter((a) => isIP(a) === 4), ipv6: addresses.filter((a) => isIP(a) === 6), source };
}
