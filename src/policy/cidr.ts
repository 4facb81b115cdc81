import { isIP } from 'node:net';

/**
 * IP addresses and CIDRs as unsigned 32-bit words, so matching a destination
 * is integer masking and map lookups: no BigInt, no allocation for IPv4.
 */

export interface Cidr {
  family: 4 | 6;
  /** One word for IPv4, four for IPv6, host bits cleared. */
  words: readonly number[];
  prefix: number;
  /** Canonical text: `10.0.0.0/8`, `2001:db8::/32`, a bare IP for a full-length prefix. */
  text: string;
}

/** An IPv4 dotted quad as an unsigned integer, or -1; no allocation. */
export function ipv4ToUint32(text: string): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return -1; // no leading zeros: 010 is octal to some parsers
      part = part * 10 + (c - 48);
      digits++;
      if (part > 255) return -1;
    } else if (c === 46 && digits > 0 && dots < 3) {
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + part;
}

/** An IPv6 address as four unsigned words, or undefined. Accepts `::`, embedded IPv4 and a zone-less form only. */
export function ipv6ToWords(text: string): number[] | undefined {
  if (isIP(text) !== 6) return undefined;
  let head = text;
  const groups: number[] = [];
  const lastColon = head.lastIndexOf(':');
  const tail = head.slice(lastColon + 1);
  let v4 = -1;
  if (tail.includes('.')) {
    v4 = ipv4ToUint32(tail);
    if (v4 < 0) return undefined;
    head = head.slice(0, lastColon + 1) + '0:0';
  }
  const [left, right] = head.split('::') as [string, string | undefined];
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const l = parse(left);
  const r = right === undefined ? [] : parse(right);
  groups.push(...l, ...new Array<number>(8 - l.length - r.length).fill(0), ...r);
  const words = [0, 1, 2, 3].map((i) => ((groups[2 * i]! << 16) | groups[2 * i + 1]!) >>> 0);
  if (v4 >= 0) words[3] = v4;
  return words;
}

/** Network mask of a prefix length within one 32-bit word (0..32). */
export function wordMask(bits: number): number {
  return bits <= 0 ? 0 : bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
}

/** Parses `ip` or `ip/prefix`; undefined when either part is invalid. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const ip = slash < 0 ? text : text.slice(0, slash);
  const version = isIP(ip);
  if (version === 0) return undefined;
  const family: 4 | 6 = version === 4 ? 4 : 6;
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) return undefined;
    prefix = Number(p);
  }
  const raw = family === 4 ? [ipv4ToUint32(ip)] : ipv6ToWords(ip);
  if (!raw || raw[0]! < 0) return undefined;
  const words = raw.map((w, i) => (w & wordMask(prefix - 32 * i)) >>> 0);
  return { family, words, prefix, text: formatCidr(family, words, prefix, max) };
}

function formatCidr(family: 4 | 6, words: readonly number[], prefix: number, max: number): string {
  let ip: string;
  if (family === 4) {
    const w = words[0]!;
    ip = [w >>> 24, (w >>> 16) & 255, (w >>> 8) & 255, w & 255].join('.');
  } else {
    const groups = words.flatMap((w) => [(w >>> 16).toString(16), (w & 0xffff).toString(16)]);
    ip = new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
  }
  return prefix === max ? ip : `${ip}/${prefix}`;
}
