/** A real DNS proxy on loopback (port 0) forwarding to a real test server, with its audit records parsed as objects. */
import type { ExecutionContext } from 'ava';
import type { Answer } from 'dns-packet';
import { createAuditSink, type AuditRecord } from '../../../src/core/audit.ts';
import { createLogger } from '../../../src/core/logger.ts';
import { createMetricsRegistry } from '../../../src/core/metrics.ts';
import { dnsProxyConfig, startDnsProxy, type DnsProxyConfig, type DnsProxyHandle, type DnsPolicy } from '../../../src/dns/index.ts';
import { startDnsServer, type DnsServer, type Zone } from './_dns-server.ts';
import { allowlist } from './_policy.ts';
import { JsonLines } from '../../helpers/json-lines.ts';

const soa: Answer = {
  name: 'example.test',
  type: 'SOA',
  ttl: 3600,
  class: 'IN',
  data: { mname: 'ns.example.test', rname: 'hostmaster.example.test', serial: 1, refresh: 60, retry: 60, expire: 60, minimum: 60 },
};
const a = (name: string, data: string, ttl = 300): Answer => ({ name, type: 'A', ttl, class: 'IN', data });

/** The upstream's world: names the allowlist allows, one it does not, a partial CNAME chain, a big TXT. */
export const ZONE: Zone = {
  records: [
    a('api.example.test', '192.0.2.10'),
    { name: 'api.example.test', type: 'AAAA', ttl: 300, class: 'IN', data: '2001:db8::10' },
    { name: 'api.example.test', type: 'TXT', ttl: 300, class: 'IN', data: ['hello'] },
    a('x.wild.example.test', '192.0.2.11', 120),
    { name: 'y.wild.example.test', type: 'CNAME', ttl: 600, class: 'IN', data: 'edge.cdn.test' },
    a('edge.cdn.test', '203.0.113.5', 45),
    { name: 'z.wild.example.test', type: 'CNAME', ttl: 600, class: 'IN', data: 'z.cdn.test' },
    { name: 'z.cdn.test', type: 'CNAME', ttl: 600, class: 'IN', data: 'edge.cdn.test' },
    a('evil.test', '192.0.2.66'),
    a('db.shop.svc.cluster.local', '10.96.3.4', 5),
    {
      name: 'big.wild.example.test',
      type: 'TXT',
      ttl: 300,
      class: 'IN',
      data: ['a'.repeat(250), 'b'.repeat(250), 'c'.repeat(250)],
    },
  ],
  soa,
  silent: ['slow.wild.example.test'],
};

export interface ProxyWorld {
  proxy: DnsProxyHandle;
  server: DnsServer;
  audit: JsonLines<AuditRecord>;
  port: number;
  advance(ms: number): void;
}

export async function startWorld(
  t: ExecutionContext,
  options: { namespace?: string; policy?: () => DnsPolicy | undefined; config?: Partial<DnsProxyConfig>; zone?: Zone } = {},
): Promise<ProxyWorld> {
  const server = await startDnsServer(options.zone ?? ZONE);
  t.teardown(() => server.close());
  const audit = new JsonLines<AuditRecord>();
  let now = 1_750_000_000_000;
  const policy = allowlist();
  const proxy = await startDnsProxy(
    dnsProxyConfig({ port: 0, bind: ['127.0.0.1'], upstreams: [{ host: server.host, port: server.port }], autoAllocate: true, ...options.config }),
    {
      policy: options.policy ?? (() => policy),
      identity: { namespace: options.namespace ?? 'default', labels: {} },
      audit: createAuditSink({ component: 'agent', stdout: false, destination: audit }),
      logger: createLogger('dns', { level: 'silent' }),
      registry: createMetricsRegistry({ processMetrics: false }),
      now: () => now,
    },
  );
  t.teardown(() => proxy.close());
  return { proxy, server, audit, port: proxy.addresses.udp[0]!.port, advance: (ms) => (now += ms) };
}
