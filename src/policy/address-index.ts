import { ipv4ToUint32, ipv6ToWords, parseCidr, wordMask } from './cidr.ts';
import { compareClaims, type Claim } from './compiled.ts';

/**
 * Claims by address block. IPv4: one map per prefix length, keyed by the
 * masked address, probed from the longest prefix down (a handful of integer
 * map lookups, no allocation). IPv6 is rare enough for a sorted scan.
 */

interface V4Level {
  prefix: number;
  mask: number;
  table: Map<number, Claim[]>;
}

interface V6Block {
  words: readonly number[];
  prefix: number;
  claims: Claim[];
}

export class AddressIndex {
  /** One table per distinct IPv4 prefix length, longest first once sealed. */
  readonly #v4: V4Level[] = [];
  readonly #v6: V6Block[] = [];

  add(claim: Claim): void {
    const cidr = parseCidr(claim.pattern);
    if (cidr === undefined) return; // validated at load; nothing else reaches here
    if (cidr.family === 4) {
      let level = this.#v4.find((l) => l.prefix === cidr.prefix);
      if (level === undefined) {
        level = { prefix: cidr.prefix, mask: wordMask(cidr.prefix), table: new Map() };
        this.#v4.push(level);
      }
      const table = level.table;
      const key = cidr.words[0]!;
      const list = table.get(key);
      if (list === undefined) table.set(key, [claim]);
      else list.push(claim);
      return;
    }
    const block = this.#v6.find((b) => b.prefix === cidr.prefix && b.words.every((w, j) => w === cidr.words[j]));
    if (block) block.claims.push(claim);
    else this.#v6.push({ words: cidr.words, prefix: cidr.prefix, claims: [claim] });
  }

  /** Orders tables longest prefix first and claim lists deterministically; call once. */
  seal(): void {
    this.#v4.sort((a, b) => b.prefix - a.prefix);
    for (const level of this.#v4) for (const list of level.table.values()) list.sort(compareClaims);
    this.#v6.sort((a, b) => b.prefix - a.prefix);
    for (const block of this.#v6) block.claims.sort(compareClaims);
  }

  get size(): number {
    let n = this.#v6.length;
    for (const level of this.#v4) n += level.table.size;
    return n;
  }

  /** Number of IPv4 probe levels; probe level i with `v4At`. */
  get v4Levels(): number {
    return this.#v4.length;
  }

  v4At(address: number, level: number): Claim[] | undefined {
    const l = this.#v4[level]!;
    return l.table.get((address & l.mask) >>> 0);
  }

  /** Every claim list whose block holds `address`, longest prefix first. */
  matches(address: string): Claim[][] {
    const out: Claim[][] = [];
    const v4 = toIpv4(address);
    if (v4 >= 0) {
      for (let level = 0; level < this.v4Levels; level++) {
        const list = this.v4At(v4, level);
        if (list) out.push(list);
      }
      return out;
    }
    const words = ipv6ToWords(address);
    if (words === undefined) return out;
    for (const block of this.#v6) {
      if (block.words.every((w, j) => ((words[j]! & wordMask(block.prefix - 32 * j)) >>> 0) === w)) out.push(block.claims);
    }
    return out;
  }
}

/** IPv4 value of a dotted quad or an IPv4-mapped IPv6 address (`::ffff:1.2.3.4`), else -1. */
export function toIpv4(address: string): number {
  const v4 = ipv4ToUint32(address);
  if (v4 >= 0) return v4;
  if (address.length > 7 && address.slice(0, 7).toLowerCase() === '::ffff:') {
    const inner = ipv4ToUint32(address.slice(7));
    if (inner >= 0) return inner;
    const words = ipv6ToWords(address);
    if (words && words[0] === 0 && words[1] === 0 && words[2] === 0xffff) return words[3]!;
  }
  return -1;
}
