import { createHash } from 'node:crypto';
import { formatIp } from '../core/ip-ranges.ts';
import { canonicalAddress } from './address.ts';

/**
 * Virtual IPs for ServiceEntry hosts that have no address of their own, from
 * the ranges Istio reserves for DNS auto-allocation (240.240.0.0/16 and
 * 2001:2::/48; class E space is never routed). The address comes from a hash
 * of the host, so every pod given the same allowlist hands out the same VIP,
 * across restarts, without talking to anyone. Two hosts that hash to one
 * slot: the first in sort order keeps it, the other takes the next free slot
 * (in sort order too), so a host's VIP moves only when a new host collides
 * with it and sorts before it.
 */

export const VIP_RANGES = { ipv4: '240.240.0.0/16', ipv6: '2001:2::/48' } as const;

/** Last octets 1..254 of each of the 256 /24s: 0 and 255 trip up some stacks. */
const PER_BLOCK = 254;
export const VIP_SLOTS = 256 * PER_BLOCK;
const V4_BASE = 0xf0f00000n;
/** 2001:2::f0f0:0, so that the low bits read like the IPv4 VIP's (240.240.1.2 and 2001:2::f0f0:102). */
const V6_BASE = (0x20010002n << 96n) | (0xf0f0n << 16n);

export interface Vip {
  ipv4: string;
  ipv6: string;
}

export interface VipTable {
  /** The host's VIPs; undefined when it has none. */
  addressesOf(host: string): Vip | undefined;
  /** The host a VIP was given to (either family, any spelling of the address). */
  hostOf(address: string): string | undefined;
  /** Hosts that asked for a VIP when every slot was taken. */
  readonly unallocated: readonly string[];
  readonly size: number;
}

/** The home slot of a host: the first 32 bits of its SHA-256, over the slots. */
export function homeSlot(host: string): number {
  return createHash('sha256').update(host).digest().readUInt32BE(0) % VIP_SLOTS;
}

export function slotAddresses(slot: number): Vip {
  const low = BigInt(Math.floor(slot / PER_BLOCK) * 256 + (slot % PER_BLOCK) + 1);
  return { ipv4: formatIp({ family: 4, value: V4_BASE | low }), ipv6: formatIp({ family: 6, value: V6_BASE | low }) };
}

/** Allocates over a set of normalized hosts; the same set gives the same table wherever it is computed. */
export function allocateVips(hosts: Iterable<string>): VipTable {
  const sorted = [...new Set(hosts)].sort();
  const taken = new Map<number, string>();
  const losers: string[] = [];
  for (const host of sorted) {
    const slot = homeSlot(host);
    if (taken.has(slot)) losers.push(host);
    else taken.set(slot, host);
  }
  const unallocated: string[] = [];
  for (const host of losers) {
    if (taken.size >= VIP_SLOTS) {
      unallocated.push(host);
      continue;
    }
    let slot = homeSlot(host);
    while (taken.has(slot)) slot = (slot + 1) % VIP_SLOTS;
    taken.set(slot, host);
  }
  const byHost = new Map<string, Vip>();
  const byAddress = new Map<string, string>();
  for (const [slot, host] of taken) {
    const vip = slotAddresses(slot);
    byHost.set(host, vip);
    byAddress.set(vip.ipv4, host);
    byAddress.set(vip.ipv6, host);
  }
  return {
    addressesOf: (host) => byHost.get(host),
    hostOf: (address) => {
      const direct = byAddress.get(address);
      if (direct !== undefined) return direct;
      const canonical = canonicalAddress(address);
      return canonical === undefined ? undefined : byAddress.get(canonical);
    },
    unallocated,
    size: byHost.size,
  };
}
