import type { Server as HttpServer } from 'node:http';
import net, { type AddressInfo, type Server } from 'node:net';
import type { DestinationStream } from 'pino';
import type { Registry } from 'prom-client';
import { createAuditSink } from '../core/audit.ts';
import { EgressdError } from '../core/errors.ts';
import { createLogger, type Logger } from '../core/logger.ts';
import { createMetricsRegistry } from '../core/metrics.ts';
import { getOriginalDst } from '../core/original-dst.ts';
import { startDnsProxy, type DnsProxyHandle } from '../dns/index.ts';
import type { CertificateManager } from '../pki/certificate-manager.ts';
import { registerCertificateMetrics } from '../pki/certificate-metrics.ts';
import type { ConfigEvent, ConfigSource } from '../policy/config-source.ts';
import { directorySource } from '../policy/directory-source.ts';
import { createAdminServer } from './admin.ts';
import type { AgentConfig } from './agent-config.ts';
import { ConnectionTracker } from './connection-tracker.ts';
import { createExplicitProxy } from './explicit-proxy.ts';
import { certsDump, createIdentityManager } from './identity.ts';
import { isOwnListener } from './loop-guard.ts';
import { createAgentMetrics, type AgentMetrics } from './metrics.ts';
import { handleOutbound, type OriginalDestination } from './outbound.ts';
import type { Pipeline } from './pipeline.ts';
import { createResolver } from './resolve.ts';
import { gatewayRoute } from './gateway-route.ts';
import { directRoute, type Route } from './route.ts';
import { SPLICE_BUFFER_BYTES } from './splice.ts';
import { isoTime } from '../core/iso-time.ts';

/** What the agent runs with, as opposed to what it is told (AgentConfig). Everything has a production default. */
export interface AgentRuntime {
  logger?: Logger;
  /** The original-destination stage; defaults to SO_ORIGINAL_DST. Tests on loopback give their own. */
  originalDestination?: OriginalDestination;
  /** Defaults to the directory source on `config.configDir`. */
  configSource?: ConfigSource;
  registry?: Registry;
  /** Receives audit records too (in-memory streams in tests, log shippers). */
  auditDestination?: DestinationStream;
  /** Defaults to `direct`. */
  route?: Route;
  /**
   * The workload certificate, when the caller made it (createIdentityManager) to hand its
   * `secureContext()` to a route built before the agent. Defaults to one made from
   * `config.identity`. The agent starts it, waits on it for readiness, and stops it on close.
   */
  identity?: CertificateManager;
}

export interface AgentHandle {
  /** Where each listener is bound (port 0 in the config becomes the real port here). */
  addresses: { outbound: AddressInfo[]; proxy: AddressInfo; admin: AddressInfo };
  configSource: ConfigSource;
  registry: Registry;
  /** The workload certificate manager (`secureContext()` for mTLS), when identity is enabled. */
  identity: CertificateManager | undefined;
  /** The DNS proxy (its UDP and TCP addresses, attribution, VIPs), when `config.dns` asked for one. */
  dns: DnsProxyHandle | undefined;
  /** Stops accepting, lets open connections finish for up to `drainMs`, cuts the rest, flushes the audit log. */
  close(): Promise<void>;
}

export async function startAgent(config: Readonly<AgentConfig>, runtime: AgentRuntime = {}): Promise<AgentHandle> {
  const logger = runtime.logger ?? createLogger('agent');
  const registry = runtime.registry ?? createMetricsRegistry();
  const metrics = createAgentMetrics(registry);
  const sink = createAuditSink({
    component: 'agent',
    stdout: config.auditStdout,
    ...(config.auditLog === undefined ? {} : { file: config.auditLog }),
    ...(runtime.auditDestination === undefined ? {} : { destination: runtime.auditDestination }),
    onError: (err) => logger.error({ err }, 'writing the audit log failed'),
  });
  const configSource = runtime.configSource ?? directorySource({ paths: [config.configDir], logger, intervalMs: config.reloadIntervalMs });
  configSource.subscribe((event) => onConfigEvent(event, logger, metrics));
  const identity = runtime.identity ?? (config.identity === undefined ? undefined : createIdentityManager(config.identity, config.namespace, logger));
  // The manager holds a new certificate a moment before 'rotated' (its output files are written in between): wait for the event.
  let rotated = identity?.isReady() ?? false;
  const certified = (): boolean => identity === undefined || (rotated && identity.isReady());
  if (identity) {
    registerCertificateMetrics(identity, registry);
    identity.on('rotated', (status) => {
      rotated = true;
      gateway?.refresh();
      logger.info({ spiffeId: status.spiffeId, serial: status.serial, notAfter: status.notAfter }, 'workload certificate ready');
    });
    // Requested before the listeners open, so that readiness waits as little as it can.
    identity.start();
  }
  const tracker = new ConnectionTracker();
  const servers: (Server | HttpServer)[] = [];
  let outboundServers: Server[] = [];
  let listening = false;
  let draining = false;

  const resolve = createResolver(config.resolve);
  const gateway =
    runtime.route === undefined && config.gateway !== undefined && identity !== undefined
      ? gatewayRoute({
          addresses: config.gateway.addresses,
          identities: config.gateway.identities,
          secureContext: () => identity.secureContext(),
          resolve,
          logger,
          connectTimeoutMs: config.connectTimeoutMs,
          onReplicaDown: (replica) => metrics.gatewayReplicaFailures.inc({ replica }),
        })
      : undefined;
  const ownPorts = (): Set<number> => new Set(servers.map((s) => (s.address() as AddressInfo | null)?.port).filter((p): p is number => p !== undefined));
  const pipeline: Pipeline = {
    policy: () => configSource.current()?.policy,
    identity: { namespace: config.namespace, labels: config.labels, ...(identity === undefined ? {} : { spiffeId: identity.spiffeId }) },
    route: runtime.route ?? gateway ?? directRoute({ connectTimeoutMs: config.connectTimeoutMs, connectTo: config.connectTo, resolve, isOwnListener: (address, port) => isOwnListener(address, port, ownPorts()) }),
    resolve,
    ownPorts,
    sink,
    metrics,
    logger,
    tracker,
    configDir: config.configDir,
    peekTimeoutMs: config.peekTimeoutMs,
    sniffTimeoutMs: config.sniffTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    warned: new Set(),
  };
  const originalDestination = runtime.originalDestination ?? getOriginalDst;
  let dns: DnsProxyHandle | undefined;

  try {
    await configSource.start();
    if (config.dns !== undefined) {
      // The real Policy, not the pipeline's view of it: names are judged without a port (decideName), VIPs come from every ServiceEntry.
      dns = await startDnsProxy(config.dns, {
        policy: () => configSource.current()?.policy,
        identity: pipeline.identity,
        audit: sink,
        logger,
        registry,
      });
      pipeline.dns = dns;
    }
    outboundServers = await listenOutbound(config, logger, (socket) => void handleOutbound(pipeline, originalDestination, socket));
    servers.push(...outboundServers);
    const proxy = createExplicitProxy(pipeline);
    servers.push(proxy);
    await listen(proxy, config.proxyPort, config.bind, 'proxy');
    const admin = createAdminServer({
      registry,
      ready: () => {
        if (draining) return { ready: false, why: 'draining' };
        if (!listening) return { ready: false, why: 'listeners not up' };
        if (!configSource.current()) return { ready: false, why: 'no valid config loaded' };
        if (identity && !certified()) return { ready: false, why: identityWhy(identity) };
        return { ready: true };
      },
      configDump: () => ({
        config: configSource.status(),
        // UDP and TCP share each address and port.
        listeners: { ...addresses(), ...(dns === undefined ? {} : { dns: dns.addresses.udp }) },
        ready: listening && !draining && configSource.current() !== undefined && certified(),
        activeConnections: tracker.size,
        ...(gateway === undefined ? {} : { gateway: { replicas: gateway.replicas() } }),
        options: config,
      }),
      certs: () => certsDump(identity, config.identity?.caAddress),
    });
    servers.push(admin);
    await listen(admin, config.adminPort, config.bind, 'admin');
  } catch (err) {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    await dns?.close();
    await gateway?.close(0);
    await identity?.stop();
    await configSource.close();
    await sink.close();
    throw err;
  }
  for (const server of servers) server.on('error', (err) => logger.error({ err }, 'listener error'));
  listening = true;
  const addresses = (): AgentHandle['addresses'] => ({
    outbound: outboundServers.map((s) => s.address() as AddressInfo),
    proxy: servers[outboundServers.length]!.address() as AddressInfo,
    admin: servers[outboundServers.length + 1]!.address() as AddressInfo,
  });
  const bound = addresses();
  for (const [listener, list] of Object.entries(bound)) {
    for (const a of [list].flat()) logger.info({ listener, address: a.address, port: a.port }, 'listening');
  }

  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    draining = true;
    const [proxy, admin] = servers.slice(outboundServers.length) as [HttpServer, HttpServer];
    for (const server of [...outboundServers, proxy]) server.close();
    proxy.closeIdleConnections();
    logger.info({ open: tracker.size, drainMs: config.drainMs }, 'draining');
    let timer: NodeJS.Timeout | undefined;
    const expired = await Promise.race([
      tracker.idle().then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), config.drainMs))),
    ]);
    clearTimeout(timer);
    if (expired) {
      logger.warn({ open: tracker.size }, 'drain period over, closing the remaining connections');
      tracker.destroyAll('agent shutting down');
      await tracker.idle();
    }
    admin.closeAllConnections();
    await new Promise((resolve) => admin.close(resolve));
    // Last: applications may resolve names while their connections drain.
    await dns?.close();
    await gateway?.close(0);
    await identity?.stop();
    await configSource.close();
    await sink.close();
    logger.info('stopped');
  };
  return {
    addresses: bound,
    configSource,
    registry,
    identity,
    dns,
    close: () => (closing ??= close()),
  };
}

/** Why a manager that holds no valid certificate is not ready: never obtained one, or let it expire. */
function identityWhy(identity: CertificateManager): string {
  const s = identity.status();
  const why = s.notAfter === undefined ? 'no workload certificate yet' : `workload certificate expired at ${isoTime(s.notAfter.getTime())}`;
  return s.lastError === undefined ? why : `${why} (${s.lastError})`;
}

function onConfigEvent(event: ConfigEvent, logger: Logger, metrics: AgentMetrics): void {
  if (event.type === 'applied') {
    const { version, files, summary, warnings } = event.snapshot;
    metrics.configReloads.inc();
    for (const warning of warnings) logger.warn({ problem: warning }, 'config warning');
    logger.info({ version, files: files.length, summary }, 'config applied');
    return;
  }
  metrics.configReloadFailures.inc();
  for (const problem of event.problems) logger.error({ problem }, 'config rejected, keeping the last good one');
}

/** The transparent listener on each bind address, all on one port (the first bound decides it when the port is 0). */
async function listenOutbound(config: Readonly<AgentConfig>, logger: Logger, onConnection: (socket: net.Socket) => void): Promise<Server[]> {
  const servers: Server[] = [];
  let port = config.outboundPort;
  for (const host of config.outboundBind) {
    const server = net.createServer({ allowHalfOpen: true, noDelay: true, highWaterMark: SPLICE_BUFFER_BYTES }, onConnection);
    try {
      await listen(server, port, host, 'outbound');
    } catch (err) {
      // A host without IPv6 still runs the IPv4 listener; a single address must bind.
      const code = ((err as EgressdError).cause as NodeJS.ErrnoException | undefined)?.code;
      if (isIPv6Host(host) && config.outboundBind.length > 1 && (code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL')) {
        logger.warn({ host, code }, 'IPv6 unavailable, outbound listener on IPv4 only');
        continue;
      }
      await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
      throw err;
    }
    port = (server.address() as AddressInfo).port;
    servers.push(server);
  }
  return servers;
}

function isIPv6Host(host: string): boolean {
  return host.includes(':');
}

function listen(server: Server | HttpServer, port: number, host: string, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(new EgressdError('EGRESSD_ERR_LISTEN', `${name} listener cannot bind ${host}:${port}: ${err.code ?? err.message}`, { cause: err, context: { host, port } }));
    };
    server.once('error', onError);
    server.listen({ port, host, ipv6Only: isIPv6Host(host) }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
