import type { SocketOptions } from 'node:dgram';
import { isIPv4 } from 'node:net';
import { formatIp, parseIp } from '../core/ip-ranges.ts';

const MAPPED_PREFIX = 0xffffn << 32n;

/**
 * One spelling per address, so that what a DNS answer said and what a
 * socket reports meet in one map: lower case, RFC 5952 compression, and an
 * IPv4-mapped IPv6 address (a dual-stack socket's view) as plain IPv4.
 * Undefined for anything that is not an IP address.
 */
export function canonicalAddress(text: string): string | undefined {
  // Node's isIPv4 refuses leading zeros, so what it accepts is already canonical: the common case, without BigInt.
  if (isIPv4(text)) return text;
  const ip = parseIp(text);
  if (ip === undefined) return undefined;
  if (ip.family === 6 && ip.value >> 32n === MAPPED_PREFIX >> 32n) return formatIp({ family: 4, value: ip.value & 0xffffffffn });
  return formatIp(ip);
}

/**
 * A dgram `lookup` for sockets that only ever talk to IP addresses (the
 * listeners answer the address a query came from; upstreams are IPs by
 * config and resolv.conf): the address as is, synchronously. Node's default
 * (dns.lookup) defers every send and connect to the next tick for nothing.
 */
export function ipAsIs(family: 4 | 6): SocketOptions['lookup'] {
  return (address, _options, callback) => callback(null, address, family);
}
