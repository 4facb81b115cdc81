import { canonicalAddress } from './address.ts';

/**
 * Which name each address was given for, learned from every answer the
 * proxy hands out and kept for the answer's TTL (with a floor). The
 * outbound path asks it when a connection carries no name (no SNI, no Host):
 * the audit record then names the host with `host_source: dns`.
 *
 * One address can be the answer for several names (CDNs, shared hosting).
 * Which of them an application meant cannot be known from the address, so
 * `judge` is conservative: the connection goes through only if every name
 * that claims the address is allowed; otherwise the denied name is the one
 * reported. In REGISTRY_ONLY a denied name never gets an answer, so this
 * bites only in REPORT (would_deny) and for names that are always forwarded.
 */

export interface AttributedName {
  host: string;
  /** Epoch milliseconds. */
  expiresAt: number;
}

export interface Attributed extends AttributedName {
  /** Every live name for the address, most recently answered first (`host` is the first). */
  names: readonly AttributedName[];
}

export interface AttributionJudgement {
  host: string;
  allowed: boolean;
  /** Every live name for the address, most recently answered first. */
  names: readonly string[];
}

export interface AttributionOptions {
  /** Addresses kept at most; the least recently answered or looked up go first (answering counted to the second). */
  maxAddresses: number;
  /** Names kept per address at most; the least recently answered go first. */
  maxNamesPerAddress?: number;
  /** Floor under a TTL, in seconds. */
  minTtlSeconds: number;
  now: () => number;
}

/** An address's names (host -> expiresAt, least recent first) and what spares a cache hit the reordering. */
interface Names {
  hosts: Map<string, number>;
  /** The most recently answered host: answered again, the order stands. */
  last: string;
  /** When the address last moved to the back of the LRU order. */
  usedAt: number;
}

/** Moving an address to the back of the order (a Map delete and set) costs as much as the rest of a cache hit: once a second is recent enough. */
const REFRESH_MS = 1000;

export class Attribution {
  /** address -> its names, in least-recent-first order (recency counted to the second when answering). */
  readonly #byAddress = new Map<string, Names>();
  readonly #options: Required<AttributionOptions>;

  constructor(options: AttributionOptions) {
    this.#options = { maxNamesPerAddress: 16, ...options };
  }

  get size(): number {
    return this.#byAddress.size;
  }

  /** Records that `address` was given as an answer for `host`. */
  remember(address: string, host: string, ttlSeconds: number): void {
    const key = canonicalAddress(address);
    if (key === undefined) return;
    const now = this.#options.now();
    const expiresAt = now + Math.max(ttlSeconds, this.#options.minTtlSeconds) * 1000;
    let names = this.#byAddress.get(key);
    if (names === undefined) {
      names = { hosts: new Map(), last: '', usedAt: now };
      this.#byAddress.set(key, names);
      while (this.#byAddress.size > this.#options.maxAddresses) this.#byAddress.delete(this.#byAddress.keys().next().value!);
    } else if (now - names.usedAt >= REFRESH_MS) {
      this.#byAddress.delete(key);
      this.#byAddress.set(key, names);
      names.usedAt = now;
    }
    const hosts = names.hosts;
    const previous = hosts.get(host);
    if (previous !== undefined && names.last === host) {
      if (expiresAt > previous) hosts.set(host, expiresAt);
      return;
    }
    hosts.delete(host);
    hosts.set(host, previous === undefined ? expiresAt : Math.max(previous, expiresAt));
    names.last = host;
    if (hosts.size > this.#options.maxNamesPerAddress) hosts.delete(hosts.keys().next().value!);
  }

  /** The most recent live name for the address, with all the others. */
  lookup(address: string): Attributed | undefined {
    const names = this.#live(address);
    if (names === undefined) return undefined;
    return { ...names[0]!, names };
  }

  /**
   * The name to decide a connection to `address` on: the most recent one
   * when `allowed` says yes to every live name, else the most recent name it
   * refuses.
   */
  judge(address: string, allowed: (host: string) => boolean): AttributionJudgement | undefined {
    const names = this.#live(address);
    if (names === undefined) return undefined;
    const hosts = names.map((n) => n.host);
    const denied = hosts.find((host) => !allowed(host));
    return { host: denied ?? hosts[0]!, allowed: denied === undefined, names: hosts };
  }

  /** Live names, most recent first; drops the expired ones and the address once none is left. */
  #live(address: string): AttributedName[] | undefined {
    const key = canonicalAddress(address);
    if (key === undefined) return undefined;
    const names = this.#byAddress.get(key);
    if (names === undefined) return undefined;
    const now = this.#options.now();
    const live: AttributedName[] = [];
    for (const [host, expiresAt] of names.hosts) {
      if (expiresAt <= now) names.hosts.delete(host);
      else live.unshift({ host, expiresAt });
    }
    this.#byAddress.delete(key);
    if (live.length === 0) return undefined;
    this.#byAddress.set(key, names);
    names.usedAt = now;
    return live;
  }
}
