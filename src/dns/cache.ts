import type { Answer } from 'dns-packet';
import { RCODE, type MessageLayout } from './wire.ts';

/**
 * Upstream answers by question, for as long as their TTLs allow: the
 * smallest TTL of the answer records, or for a negative answer the SOA's
 * (RFC 2308: the lesser of the SOA record's TTL and its minimum). Answers
 * without a usable TTL (SERVFAIL, truncated, negative without SOA) are not
 * kept. Bounded: past `maxEntries` the least recently used goes, "recently"
 * counted in seconds: moving an entry to the back of the order (a Map delete
 * and set) cost as much as the rest of a cache hit, so a hit moves it at
 * most once a second. The clock is injected so that expiry is tested
 * without sleeping.
 */

/** An address an answer gave for the asked name, with its record's TTL. */
export interface AnsweredAddress {
  address: string;
  ttl: number;
}

export interface CachedAnswer {
  /** The answer as the upstream sent it (id and TTLs as of storing). */
  bytes: Buffer;
  layout: MessageLayout;
  /** A/AAAA records of the asked name (through its CNAME chain), for attribution. */
  addresses: readonly AnsweredAddress[];
  storedAt: number;
  expiresAt: number;
}

export interface CacheHit {
  answer: CachedAnswer;
  /** Whole seconds since it was stored: what to take off every TTL. */
  elapsed: number;
}

interface Entry extends CachedAnswer {
  /** When it last moved to the back of the LRU order. */
  usedAt: number;
}

const REFRESH_MS = 1000;

export class DnsCache {
  readonly #entries = new Map<string, Entry>();
  readonly #maxEntries: number;
  readonly #maxTtlSeconds: number;
  readonly #now: () => number;

  constructor(options: { maxEntries: number; maxTtlSeconds: number; now: () => number }) {
    this.#maxEntries = options.maxEntries;
    this.#maxTtlSeconds = options.maxTtlSeconds;
    this.#now = options.now;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): CacheHit | undefined {
    const answer = this.#entries.get(key);
    if (answer === undefined) return undefined;
    const now = this.#now();
    if (now >= answer.expiresAt) {
      this.#entries.delete(key);
      return undefined;
    }
    if (now - answer.usedAt >= REFRESH_MS) {
      this.#entries.delete(key);
      this.#entries.set(key, answer);
      answer.usedAt = now;
    }
    return { answer, elapsed: Math.floor((now - answer.storedAt) / 1000) };
  }

  /** Keeps the answer for `ttlSeconds` (capped); returns false when it is not worth keeping (TTL 0). */
  set(key: string, bytes: Buffer, layout: MessageLayout, addresses: readonly AnsweredAddress[], ttlSeconds: number): boolean {
    const ttl = Math.min(ttlSeconds, this.#maxTtlSeconds);
    if (!(ttl > 0)) return false;
    const now = this.#now();
    this.#entries.delete(key);
    this.#entries.set(key, { bytes, layout, addresses, storedAt: now, expiresAt: now + ttl * 1000, usedAt: now });
    while (this.#entries.size > this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    return true;
  }

  clear(): void {
    this.#entries.clear();
  }
}

/** What cacheTtl looks at: the header's rcode and TC bit, the decoded answer and authority sections. */
export interface AnswerFacts {
  rcode: number;
  truncated: boolean;
  answers: readonly Answer[];
  authorities: readonly Answer[];
}

/** How long an answer may be cached, in seconds; undefined when it must not be. */
export function cacheTtl(facts: AnswerFacts): number | undefined {
  if (facts.truncated) return undefined;
  const records = facts.answers.filter((r) => r.type !== 'OPT');
  if (facts.rcode === RCODE.NOERROR && records.length > 0) {
    let min = Infinity;
    for (const r of records) min = Math.min(min, ttlOf(r));
    return min;
  }
  if (facts.rcode !== RCODE.NOERROR && facts.rcode !== RCODE.NXDOMAIN) return undefined;
  for (const r of facts.authorities) {
    if (r.type === 'SOA') return Math.min(ttlOf(r), r.data.minimum ?? 0);
  }
  return undefined;
}

export function ttlOf(record: Answer): number {
  return record.type === 'OPT' ? 0 : (record.ttl ?? 0);
}
