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
const TYPE_LABELS = new Map<string, string>([
  ...['A', 'AAAA', 'CNAME', 'MX', 'TXT', 'SRV', 'PTR', 'NS', 'SOA', 'ANY', 'CAA', 'NAPTR'].map((t) => [t, t] as [string, string]),
  ['UNKNOWN_64', 'SVCB'],
  ['UNKNOWN_65', 'HTTPS'],
]);

export function typeLabel(type: string | undefined): string {
  return type === undefined ? 'NONE' : (TYPE_LABELS.get(type) ?? 'OTHER');
}

/** The DNS proxy's metrics, on the registry it is given. Names are documented in docs/dns.md. */
export interface DnsMetrics {
  queries: Counter<'type' | 'result'>;
  cacheLookups: Counter<'result'>;
  upstreamDuration: Histogram<'transport'>;
  upstreamFailures: Counter<never>;
  malformed: Counter<'transport'>;
  truncated: Counter<never>;
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
  return {
    queries: new Counter({ name: 'egressd_dns_queries_total', help: 'DNS queries answered, by query type and result', labelNames: ['type', 'result'], registers }),
    cacheLookups: new Counter({ name: 'egressd_dns_cache_lookups_total', help: 'DNS cache lookups, by result (hit, miss)', labelNames: ['result'], registers }),
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
  };
}
