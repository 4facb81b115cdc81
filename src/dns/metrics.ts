import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** How a query ended, as the `result` label. */
export type QueryResult =
  /** Answered from the allowlist (ServiceEntry addresses, endpoints or a VIP). */
  | 'local'
  /** Answered from the cache. */
  | 'cached'
  /** Asked upstream. */
  | 'forwarded'
  /** Refused by policy (NXDOMAIN or REFUSED). */
  | 'denied'
  /** No upstream answered, or none has been configured yet (no policy): SERVFAIL. */
  | 'servfail'
  /** The packet was broken: FORMERR. */
  | 'formerr'
  /** Opcode other than QUERY. */
  | 'notimp'
  /** EDNS version other than 0. */
  | 'badvers';

/** The `type` label: common types by name, the rest as OTHER so that clients cannot grow the series. */
const TYPE_CODES: readonly [label: string, code: number][] = [
  ['A', 1], ['NS', 2], ['CNAME', 5], ['SOA', 6], ['PTR', 12], ['MX', 15], ['TXT', 16], ['AAAA', 28],
  ['SRV', 33], ['NAPTR', 35], ['SVCB', 64], ['HTTPS', 65], ['ANY', 255], ['CAA', 257],
];
/** By dns-packet's name for the type (it knows SVCB and HTTPS only as UNKNOWN_64 and UNKNOWN_65). */
const BY_NAME = new Map<string, string>(TYPE_CODES.flatMap(([label, code]) => [[label, label], [`UNKNOWN_${code}`, label]]));
const BY_CODE = new Map<number, string>(TYPE_CODES.map(([label, code]) => [code, label]));

export function typeLabel(type: string | undefined): string {
  return type === undefined ? 'NONE' : (BY_NAME.get(type) ?? 'OTHER');
}

/** The same label from the type's number, as the cache-hit path reads it off the wire. */
export function typeLabelOf(code: number): string {
  return BY_CODE.get(code) ?? 'OTHER';
}

/** The DNS proxy's metrics, on the registry it is given. Names are documented in docs/dns.md. */
export interface DnsMetrics {
  queries: Counter<'type' | 'result'>;
  cacheLookups: Counter<'result'>;
  upstreamDuration: Histogram<'transport'>;
  upstreamFailures: Counter<never>;
  malformed: Counter<'transport'>;
  truncated: Counter<never>;
  /**
   * One query answered by the cache-hit path: `queries` {type, cached} and
   * `cacheLookups` {hit}, kept as plain numbers and added to the counters
   * when they are read (a labelled inc costs as much as the rest of a hit).
   */
  countCacheHit(typeLabel: string): void;
}

export function createDnsMetrics(registry: Registry, sizes: { cache: () => number; attribution: () => number }): DnsMetrics {
  const registers = [registry];
  new Gauge({
    name: 'egressd_dns_cache_entries',
    help: 'Answers in the DNS cache',
    registers,
    collect() {
      this.set(sizes.cache());
    },
  });
  new Gauge({
    name: 'egressd_dns_attribution_entries',
    help: 'Addresses whose name the DNS proxy remembers for the outbound path',
    registers,
    collect() {
      this.set(sizes.attribution());
    },
  });
  const pendingHits = new Map<string, number>();
  let pendingLookups = 0;
  return {
    queries: new Counter({
      name: 'egressd_dns_queries_total',
      help: 'DNS queries answered, by query type and result',
      labelNames: ['type', 'result'],
      registers,
      collect() {
        for (const [type, n] of pendingHits) this.inc({ type, result: 'cached' }, n);
        pendingHits.clear();
      },
    }),
    cacheLookups: new Counter({
      name: 'egressd_dns_cache_lookups_total',
      help: 'DNS cache lookups, by result (hit, miss)',
      labelNames: ['result'],
      registers,
      collect() {
        if (pendingLookups > 0) this.inc({ result: 'hit' }, pendingLookups);
        pendingLookups = 0;
      },
    }),
    upstreamDuration: new Histogram({
      name: 'egressd_dns_upstream_duration_seconds',
      help: 'Time for one exchange with an upstream nameserver, by transport (timeouts included)',
      labelNames: ['transport'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    upstreamFailures: new Counter({ name: 'egressd_dns_upstream_failures_total', help: 'Queries no upstream nameserver answered', registers }),
    malformed: new Counter({ name: 'egressd_dns_malformed_packets_total', help: 'Packets that were not a DNS query (dropped or answered FORMERR), by transport', labelNames: ['transport'], registers }),
    truncated: new Counter({ name: 'egressd_dns_truncated_responses_total', help: 'UDP answers cut to the header and question (TC) because the client takes less', registers }),
    countCacheHit(typeLabel) {
      pendingHits.set(typeLabel, (pendingHits.get(typeLabel) ?? 0) + 1);
      pendingLookups++;
    },
  };
}
