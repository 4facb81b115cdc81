/**
 * Runs the DNS proxy on its own, as the agent will run it, for the e2e test
 * (until `egressd agent` starts it): the allowlist from a directory, the
 * upstreams from a resolv.conf, audit records on stdout. A small HTTP server
 * on loopback shows what the outbound path would ask: `/metrics`, and
 * `/name?ip=ADDRESS` (nameFor with every name allowed).
 *
 *   node --import tsx test/e2e/dns-proxy-runner.ts '{"configDir":"...","resolvConf":"...","adminPort":15000}'
 *
 * Prints `{"ready":true,...}` on stdout once it answers.
 */
import http from 'node:http';
import { createAuditSink } from '../../src/core/audit.ts';
import { createLogger } from '../../src/core/logger.ts';
import { createMetricsRegistry, renderMetrics } from '../../src/core/metrics.ts';
import { onShutdown } from '../../src/core/shutdown.ts';
import { dnsProxyConfig, startDnsProxy, type DnsProxyConfig } from '../../src/dns/index.ts';
import { compilePolicy, loadConfig } from '../../src/policy/index.ts';

interface RunnerOptions extends Partial<DnsProxyConfig> {
  configDir: string;
  adminPort: number;
  namespace?: string;
}

const options = JSON.parse(process.argv[2] ?? '{}') as RunnerOptions;
const { configDir, adminPort, namespace, ...overrides } = options;
const policy = compilePolicy(await loadConfig([configDir]));
const registry = createMetricsRegistry({ processMetrics: false });
const audit = createAuditSink({ component: 'agent' });
const proxy = await startDnsProxy(dnsProxyConfig(overrides), {
  policy: () => policy,
  identity: { namespace: namespace ?? 'default', labels: {} },
  audit,
  registry,
  logger: createLogger('dns', { level: 'warn' }),
});

const admin = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === '/metrics') {
    void renderMetrics(registry).then(({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body));
    return;
  }
  if (url.pathname === '/name') {
    const found = proxy.nameFor(url.searchParams.get('ip') ?? '', () => true);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(found ?? null));
    return;
  }
  res.writeHead(404).end();
});
await new Promise<void>((resolve) => admin.listen(adminPort, '127.0.0.1', () => resolve()));
process.stdout.write(`${JSON.stringify({ ready: true, udp: proxy.addresses.udp, tcp: proxy.addresses.tcp, upstreams: proxy.upstreams })}\n`);

onShutdown(async () => {
  admin.close();
  await proxy.close();
  await audit.close();
  return 0;
});
