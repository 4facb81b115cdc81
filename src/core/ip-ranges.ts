import { isIP } from 'node:net';

/**
 * Which destination addresses a proxy must never dial on a caller's behalf
 * (server-side request forgery): loopback, private networks, link-local
 * (cloud metadata at 169.254.169.254 above all), CGNAT, multicast, reserved
 * space, and IPv6 forms that embed such an IPv4 address. Pure: no DNS, no I/O.
 */

export interface ParsedIp {
  family: 4 | 6;
  /** The address as an unsigned integer (32 or 128 bits). */
  value: bigint;
}

export interface Cidr {
  family: 4 | 6;
  base: bigint;
  prefix: number;
  /** Canonical text, `10.0.0.0/8`, `fd00::/8`. */
  text: string;
}

export type ForbiddenRange =
  | 'invalid'
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'link_local'
  | 'cgnat'
  | 'unique_local'
  | 'site_local'
  | 'multicast'
  | 'broadcast'
  | 'reserved'
  | 'documentation'
  | 'benchmarking'
  | 'ipv4_compatible'
  | 'nat64_local'
  | 'discard'
  | 'teredo';

/** How an IPv6 address carries an IPv4 one that is what the packets will finally reach. */
export type Embedding = 'ipv4_mapped' | 'nat64' | '6to4';

export interface AddressClass {
  forbidden: boolean;
  /** Why it is forbidden (of the embedded IPv4 address, when there is one). */
  range?: ForbiddenRange;
  /** The IPv4 address inside an IPv4-mapped, NAT64 or 6to4 IPv6 address. */
  embedded?: string;
  embedding?: Embedding;
}

export function parseIp(text: string): ParsedIp | undefined {
  const address = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const family = isIP(address);
  if (family === 4) return { family: 4, value: ipv4Value(address) };
  if (family === 6) return { family: 6, value: ipv6Value(address.replace(/%.*$/, '')) };
  return undefined;
}

function ipv4Value(address: string): bigint {
  return address.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
}

function ipv6Value(address: string): bigint {
  let text = address;
  // A trailing dotted quad stands for the last two 16-bit groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const v4 = ipv4Value(dotted[1]!);
    text = `${text.slice(0, dotted.index)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? [] : new Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  return [...headGroups, ...zeros, ...tailGroups].reduce((acc, group) => (acc << 16n) | BigInt(parseInt(group, 16)), 0n);
}

export function formatIp(ip: ParsedIp): string {
  if (ip.family === 4) return [24n, 16n, 8n, 0n].map((shift) => String((ip.value >> shift) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((ip.value >> BigInt(112 - 16 * i)) & 0xffffn));
  // Compress the longest run of two or more zero groups (RFC 5952).
  let best = { start: -1, length: 0 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length && j - i > 1) best = { start: i, length: j - i };
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.start < 0) return hex.join(':');
  return `${hex.slice(0, best.start).join(':')}::${hex.slice(best.start + best.length).join(':')}`;
}

/** Parses `a.b.c.d/n`, `v6/n`, or a bare address (a /32 or /128). Host bits are cleared. */
export function parseCidr(text: string): Cidr | undefined {
  const [addressText, prefixText, extra] = text.trim().split('/');
  if (addressText === undefined || extra !== undefined) return undefined;
  const ip = parseIp(addressText);
  if (!ip) return undefined;
  const bits = ip.family === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = prefixText === undefined ? bits : Number(prefixText);
  if (prefix > bits) return undefined;
  const base = ip.value & mask(bits, prefix);
  return { family: ip.family, base, prefix, text: `${formatIp({ family: ip.family, value: base })}/${prefix}` };
}

function mask(bits: number, prefix: number): bigint {
  const all = (1n << BigInt(bits)) - 1n;
  return all ^ ((1n << BigInt(bits - prefix)) - 1n);
}

export function cidrContains(cidr: Cidr, ip: ParsedIp): boolean {
  if (cidr.family !== ip.family) return false;
  return (ip.value & mask(ip.family === 4 ? 32 : 128, cidr.prefix)) === cidr.base;
}

function table(entries: Array<[string, ForbiddenRange]>): Array<[Cidr, ForbiddenRange]> {
  return entries.map(([text, range]) => [parseCidr(text)!, range]);
}

/** Most specific first: the first match names the range. */
const FORBIDDEN_V4 = table([
  ['255.255.255.255/32', 'broadcast'],
  ['0.0.0.0/8', 'unspecified'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'cgnat'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link_local'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'reserved'],
  ['192.0.2.0/24', 'documentation'],
  ['192.88.99.0/24', 'reserved'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'benchmarking'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'],
]);

const FORBIDDEN_V6 = table([
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['::/96', 'ipv4_compatible'],
  ['64:ff9b:1::/48', 'nat64_local'],
  ['100::/64', 'discard'],
  ['2001:db8::/32', 'documentation'],
  ['2001::/32', 'teredo'],
  ['fc00::/7', 'unique_local'],
  ['fe80::/10', 'link_local'],
  ['fec0::/10', 'site_local'],
  ['ff00::/8', 'multicast'],
]);

const EMBEDDINGS: Array<[Cidr, Embedding, (value: bigint) => bigint]> = [
  [parseCidr('::ffff:0:0/96')!, 'ipv4_mapped', (v) => v & 0xffffffffn],
  [parseCidr('64:ff9b::/96')!, 'nat64', (v) => v & 0xffffffffn],
  [parseCidr('2002::/16')!, '6to4', (v) => (v >> 80n) & 0xffffffffn],
];

/** The IPv4 address an IPv6 one finally reaches, for the embeddings that carry one. */
export function embeddedIpv4(ip: ParsedIp): { address: ParsedIp; embedding: Embedding } | undefined {
  if (ip.family !== 6) return undefined;
  for (const [cidr, embedding, extract] of EMBEDDINGS) {
    if (cidrContains(cidr, ip)) return { address: { family: 4, value: extract(ip.value) }, embedding };
  }
  return undefined;
}

/**
 * Classifies an address a proxy is about to dial. An IPv6 address that embeds
 * an IPv4 one (mapped, NAT64, 6to4) is judged by the IPv4 address it embeds.
 * Anything that is not an IP address is forbidden as `invalid`.
 */
export function classifyAddress(address: string): AddressClass {
  const ip = parseIp(address);
  if (!ip) return { forbidden: true, range: 'invalid' };
  const inner = embeddedIpv4(ip);
  if (inner) {
    const range = rangeOf(inner.address);
    const embedded = { embedded: formatIp(inner.address), embedding: inner.embedding };
    return range ? { forbidden: true, range, ...embedded } : { forbidden: false, ...embedded };
  }
  const range = rangeOf(ip);
  return range ? { forbidden: true, range } : { forbidden: false };
}

function rangeOf(ip: ParsedIp): ForbiddenRange | undefined {
  return forbiddenEntry(ip)?.[1];
}

function forbiddenEntry(ip: ParsedIp): [Cidr, ForbiddenRange] | undefined {
  return (ip.family === 4 ? FORBIDDEN_V4 : FORBIDDEN_V6).find(([cidr]) => cidrContains(cidr, ip));
}

export interface AddressVerdict extends AddressClass {
  /** True when the address may be dialled: not forbidden, or explicitly listed. */
  allowed: boolean;
  /** The listed CIDR that let a forbidden address through. */
  allowedBy?: string;
}

/**
 * May a proxy dial `address`? A forbidden address passes only when one of
 * `listed` (what an operator named explicitly, e.g. ServiceEntry `addresses`)
 * covers it, and lies within the forbidden range it opens: `10.0.0.0/8` opens
 * 10.1.2.3, but `0.0.0.0/0` opens nothing, or a catch-all TCP ServiceEntry
 * would expose the metadata service. For an IPv6 address embedding an IPv4
 * one, an IPv4 listing is judged against the embedded address, an IPv6
 * listing must be as narrow as the embedded range inside the embedding.
 */
export function vetAddress(address: string, listed: readonly Cidr[]): AddressVerdict {
  const cls = classifyAddress(address);
  if (!cls.forbidden) return { ...cls, allowed: true };
  const ip = parseIp(address);
  if (!ip) return { ...cls, allowed: false };
  const inner = embeddedIpv4(ip);
  const target = inner ? inner.address : ip;
  const entry = forbiddenEntry(target)!;
  const innerPrefix = inner ? EMBEDDINGS.find(([, embedding]) => embedding === inner.embedding)![0].prefix : 0;
  const cover = listed.find((cidr) => {
    if (cidr.family === target.family) return cidrContains(cidr, target) && cidr.prefix >= entry[0].prefix;
    // An IPv6 listing of an address that embeds an IPv4 one.
    return inner !== undefined && cidrContains(cidr, ip) && cidr.prefix >= innerPrefix + entry[0].prefix;
  });
  return cover ? { ...cls, allowed: true, allowedBy: cover.text } : { ...cls, allowed: false };
}
