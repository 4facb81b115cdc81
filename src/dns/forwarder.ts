import dnsPacket, { type Answer, type DecodedPacket } from 'dns-packet';
import { EgressdError } from '../core/errors.ts';
import { cacheTtl, ttlOf, type AnsweredAddress, type DnsCache } from './cache.ts';
import { PROXY_UDP_SIZE, questionFor, upstreamQuery, type Query } from './codec.ts';
import type { DnsMetrics } from './metrics.ts';
import { keyOfQuery } from './query-key.ts';
import type { Upstreams } from './upstream.ts';
import { agedCopy, encodeHeader, encodeOpt, FLAG, HEADER_BYTES, RCODE, scanMessage, type MessageLayout } from './wire.ts';

/**
 * The forward path: cache, else the upstream nameservers (one request per
 * question however many clients ask at once), then the CNAME chain. An
 * upstream that stops at a CNAME whose target it does not serve (CoreDNS's
 * ExternalName services, authoritative-only servers) gets asked for the
 * target, and the client receives the whole chain. Addresses are credited to
 * the name the application asked for, never to a CNAME target: that is the
 * name it was judged on.
 */

export interface Forwarded {
  /** The answer for this client: its id, its question, TTLs aged. */
  bytes: Buffer;
  /** A/AAAA records of the asked name or its chain, with their remaining TTLs. */
  addresses: readonly AnsweredAddress[];
  cached: boolean;
}

interface Resolved {
  bytes: Buffer;
  layout: MessageLayout;
  addresses: readonly AnsweredAddress[];
}

/** CNAME hops followed inside one answer, and upstream requests made to finish one chain. */
const MAX_CHAIN = 16;
const MAX_FOLLOW = 8;

export class Forwarder {
  readonly #upstreams: Upstreams;
  readonly #cache: DnsCache;
  readonly #metrics: DnsMetrics;
  readonly #inflight = new Map<string, Promise<Resolved>>();

  constructor(options: { upstreams: Upstreams; cache: DnsCache; metrics: DnsMetrics }) {
    this.#upstreams = options.upstreams;
    this.#cache = options.cache;
    this.#metrics = options.metrics;
  }

  /** Throws EGRESSD_ERR_UPSTREAM when no nameserver gave a usable answer. */
  async forward(query: Query): Promise<Forwarded> {
    return this.#forward(query, 0);
  }

  /** The answer from the cache, synchronously; undefined on a miss (then call forward). */
  cached(query: Query): Forwarded | undefined {
    return this.#cached(query, keyOfQuery(query));
  }

  #cached(query: Query, key: string): Forwarded | undefined {
    const hit = this.#cache.get(key);
    if (hit === undefined) return undefined;
    this.#metrics.cacheLookups.inc({ result: 'hit' });
    const { answer, elapsed } = hit;
    return {
      bytes: agedCopy(answer.bytes, answer.layout, query.id, query.questionBytes, elapsed),
      addresses: elapsed === 0 ? answer.addresses : answer.addresses.map((a) => ({ address: a.address, ttl: Math.max(0, a.ttl - elapsed) })),
      cached: true,
    };
  }

  async #forward(query: Query, depth: number): Promise<Forwarded> {
    const key = keyOfQuery(query);
    const hit = this.#cached(query, key);
    if (hit !== undefined) return hit;
    this.#metrics.cacheLookups.inc({ result: 'miss' });
    let pending = this.#inflight.get(key);
    if (pending === undefined) {
      pending = this.#resolve(query, key, depth).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, pending);
    }
    const resolved = await pending;
    return { bytes: agedCopy(resolved.bytes, resolved.layout, query.id, query.questionBytes, 0), addresses: resolved.addresses, cached: false };
  }

  async #resolve(query: Query, key: string, depth: number): Promise<Resolved> {
    const reply = await this.#upstreams.query((id) => upstreamQuery(query, id));
    const first = decodeAnswer(reply.bytes);
    const chain = followChain(query.name, query.type, first.packet.answers ?? []);
    let resolved: Resolved = { bytes: reply.bytes, layout: first.layout, addresses: addressesOf(first.packet.answers ?? [], chain.names) };
    let facts = { rcode: first.rcode, truncated: false, answers: first.packet.answers ?? [], authorities: first.packet.authorities ?? [] };
    if (first.rcode === RCODE.NOERROR && chain.unfinished && depth < MAX_FOLLOW) {
      const followed = await this.#follow(query, chain.last, depth);
      if (followed !== undefined) {
        const combined = combine(query, first.packet, followed.packet);
        if (combined !== undefined) {
          const names = new Set([...chain.names, ...followChain(chain.last, query.type, followed.packet.answers ?? []).names]);
          const answers = [...(first.packet.answers ?? []), ...(followed.packet.answers ?? [])];
          resolved = { bytes: combined, layout: scanMessage(combined), addresses: addressesOf(answers, names) };
          facts = { rcode: followed.rcode, truncated: false, answers, authorities: followed.packet.authorities ?? [] };
        }
      }
    }
    const ttl = cacheTtl(facts);
    if (ttl !== undefined) this.#cache.set(key, resolved.bytes, resolved.layout, resolved.addresses, ttl);
    return resolved;
  }

  /** The answer for the chain's target, through the cache; undefined when it cannot be asked or answered. */
  async #follow(query: Query, target: string, depth: number): Promise<DecodedAnswer | undefined> {
    let questionBytes: Buffer;
    try {
      questionBytes = questionFor(target, query);
    } catch {
      return undefined;
    }
    try {
      const forwarded = await this.#forward({ ...query, name: target, questionBytes }, depth + 1);
      return decodeAnswer(forwarded.bytes);
    } catch {
      return undefined;
    }
  }
}

interface DecodedAnswer {
  packet: DecodedPacket;
  layout: MessageLayout;
  rcode: number;
}

function decodeAnswer(bytes: Buffer): DecodedAnswer {
  try {
    return { packet: dnsPacket.decode(bytes), layout: scanMessage(bytes), rcode: bytes[3]! & 0xf };
  } catch (err) {
    throw new EgressdError('EGRESSD_ERR_UPSTREAM', `the upstream answer cannot be decoded: ${(err as Error).message}`, { cause: err });
  }
}

/** The names of the chain from `name` (lower case), where it ends, and whether it ends without a record of the asked type. */
export function followChain(name: string, type: string, answers: readonly Answer[]): { names: Set<string>; last: string; unfinished: boolean } {
  const names = new Set([name]);
  let last = name;
  for (let hop = 0; hop < MAX_CHAIN; hop++) {
    const cname = answers.find((r) => r.type === 'CNAME' && r.name.toLowerCase() === last);
    if (cname === undefined || cname.type !== 'CNAME') break;
    last = cname.data.toLowerCase();
    if (names.has(last)) break;
    names.add(last);
  }
  const followable = type !== 'CNAME' && type !== 'ANY' && last !== name;
  const unfinished = followable && !answers.some((r) => r.type === type && r.name.toLowerCase() === last);
  return { names, last, unfinished };
}

function addressesOf(answers: readonly Answer[], names: ReadonlySet<string>): AnsweredAddress[] {
  const out: AnsweredAddress[] = [];
  for (const r of answers) {
    if ((r.type === 'A' || r.type === 'AAAA') && names.has(r.name.toLowerCase())) out.push({ address: r.data, ttl: ttlOf(r) });
  }
  return out;
}

/**
 * One answer out of the first reply's chain and the target's answer: the
 * client's question, the chain, the target's records and authority, the
 * target's rcode. Undefined when dns-packet cannot encode a record back.
 */
function combine(query: Query, first: DecodedPacket, followed: DecodedPacket): Buffer | undefined {
  const answers = [...(first.answers ?? []), ...(followed.answers ?? [])].filter((r) => r.type !== 'OPT');
  const authorities = (followed.authorities ?? []).filter((r) => r.type !== 'OPT');
  let records: Buffer;
  try {
    records = dnsPacket.encode({ answers, authorities }).subarray(HEADER_BYTES);
  } catch {
    return undefined;
  }
  const flags = FLAG.QR | FLAG.RA | (query.flags & (FLAG.RD | FLAG.CD)) | ((followed.flags ?? 0) & (FLAG.AD | 0xf));
  const opt = query.edns === undefined ? [] : [encodeOpt(PROXY_UDP_SIZE, query.edns.dnssecOk ? 0x8000 : 0, [])];
  return Buffer.concat([encodeHeader(0, flags, 1, answers.length, authorities.length, opt.length), query.questionBytes, records, ...opt]);
}
