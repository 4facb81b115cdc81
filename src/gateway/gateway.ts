import http2, { type Http2SecureServer, type ServerHttp2Session, type ServerHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { AuditSink } from '../core/audit.ts';
import { EgressdError, errorMessage } from '../core/errors.ts';
import type { Cidr } from '../core/ip-ranges.ts';
import type { Logger } from '../core/logger.ts';
import { formatHostPort } from '../core/net.ts';
import type { ResolveOverride } from '../core/resolve-override.ts';
import type { ConfigSource } from '../policy/config-source.ts';
import { directorySource } from '../policy/directory-source.ts';
import type { LoadOptions } from '../policy/index.ts';
import { uriSans } from '../tunnel/san.ts';
import { startAdmin, type AdminServer } from './admin.ts';
import { loadCredentials, serverTlsOptions, type CredentialFiles, type ServerCredentials } from './credentials.ts';
import { resolverWithOverrides, systemResolver, type Resolver } from './destination.ts';
import { HttpProxy } from './http-proxy.ts';
import { peerIdentity, type CallerIdentity } from './identity.ts';
import { createGatewayMetrics, type GatewayMetrics } from './metrics.ts';
import { Reloader, type ReloadOutcome } from './reloader.ts';
import { handleTunnel, type TunnelContext } from './tunnel.ts';

/**
 * The egress gateway: an HTTP/2 server that speaks mutual TLS only, takes
 * one CONNECT stream per tunnel from agents, decides again with the
 * caller's certificate identity, and connects on its behalf.
 */

export interface GatewayConfig {
  listen: { host: string; port: number };
  /** Admin endpoints (/healthz/ready, /stats/prometheus, /config_dump); none when undefined. */
  admin?: { host: string; port: number };
  /** The SPIFFE trust domain callers must belong to. */
  trustDomain: string;
  /** This replica's name, in audit records and response headers. */
  replica: string;
  credentials: CredentialFiles;
  /** Allowlist files and directories. */
  configPaths: readonly string[];
  loadOptions?: LoadOptions;
  /** DestinationRule credentialName -> DIR/<name>/{tls.crt,tls.key,ca.crt}. */
  credentialsDir?: string;
  /** CIDRs opened for every destination (labs); the rules' own `addresses` open theirs. */
  allowPrivateCidrs?: readonly Cidr[];
  resolve?: readonly ResolveOverride[];
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  /** How often files are checked for changes (ms); 0 disables polling (reload() still works). */
  reloadIntervalMs?: number;
}

export interface GatewayRuntime {
  logger: Logger;
  audit: AuditSink;
  /** Replaces the system resolver (tests); overrides from `resolve` still apply first. */
  resolver?: Resolver;
  /** Where the allowlist comes from; defaults to the directory source on `configPaths`. */
  configSource?: ConfigSource;
}

export interface Gateway {
  address(): AddressInfo;
  adminAddress(): AddressInfo | undefined;
  readonly metrics: GatewayMetrics;
  ready(): boolean;
  /** Checks config and credentials now (as the poller does). `force` reloads even unchanged files. */
  reload(force?: boolean): Promise<{ config: ReloadOutcome; credentials: ReloadOutcome }>;
  /** Stops accepting tunnels, lets open ones finish within `graceMs`, then closes everything. */
  close(graceMs?: number): Promise<void>;
}

export async function startGateway(config: GatewayConfig, runtime: GatewayRuntime): Promise<Gateway> {
  const { logger } = runtime;
  const metrics = createGatewayMetrics();
  const connectTimeoutMs = config.connectTimeoutMs ?? 5000;
  const idleTimeoutMs = config.idleTimeoutMs ?? 3_600_000;
  const reloadIntervalMs = config.reloadIntervalMs ?? 2000;
  let credentials: ServerCredentials | undefined;
  let stopping = false;
  let server: Http2SecureServer | undefined;

  const configSource =
    runtime.configSource ?? directorySource({ paths: config.configPaths, logger, watch: false, intervalMs: reloadIntervalMs, ...(config.loadOptions ? { loadOptions: config.loadOptions } : {}) });
  configSource.subscribe((event) => {
    if (event.type === 'applied') {
      httpProxy.reset();
      metrics.reloads.inc({ what: 'config', outcome: 'loaded' });
      logger.info({ version: event.snapshot.version, files: event.snapshot.files.length, warnings: event.snapshot.warnings.length }, 'allowlist loaded');
    } else {
      metrics.reloads.inc({ what: 'config', outcome: 'failed' });
      logger.error({ problems: event.problems }, 'allowlist reload failed; keeping the last good one');
    }
  });
  const credentialReloader = new Reloader<ServerCredentials>({
    paths: () => [config.credentials.certFile, config.credentials.keyFile, config.credentials.trustBundleFile],
    load: () => loadCredentials(config.credentials),
    apply: (value) => {
      credentials = value;
      server?.setSecureContext({ ...serverTlsOptions(value) });
      metrics.reloads.inc({ what: 'credentials', outcome: 'loaded' });
      logger.info({ version: value.version, notAfter: value.notAfter.toISOString() }, 'gateway credentials loaded');
    },
    onError: (err) => {
      metrics.reloads.inc({ what: 'credentials', outcome: 'failed' });
      logger.error({ err: errorMessage(err) }, 'gateway credentials reload failed; keeping the last good ones');
    },
    intervalMs: reloadIntervalMs,
  });

  const records = { sink: runtime.audit, metrics, replica: config.replica };
  const resolver = resolverWithOverrides(config.resolve ?? [], runtime.resolver ?? systemResolver);
  const httpProxy = new HttpProxy({
    records,
    metrics,
    logger,
    resolver,
    connectTimeoutMs,
    idleTimeoutMs,
    credentialsDir: config.credentialsDir,
    gatewayIdentity: () => uriSans(credentials?.subjectAltName ?? undefined).find((u) => u.startsWith('spiffe://')) ?? null,
  });
  const context: TunnelContext = {
    snapshot: () => configSource.current(),
    stopping: () => stopping,
    resolver,
    extraListed: config.allowPrivateCidrs ?? [],
    connectTimeoutMs,
    sniffTimeoutMs: SNIFF_TIMEOUT_MS,
    idleTimeoutMs,
    records,
    metrics,
    logger,
    serveHttp: (stream, tunnel) => httpProxy.serve(stream, tunnel),
  };

  await credentialReloader.start();
  await configSource.start();
  if (!configSource.current()) {
    credentialReloader.stop();
    await configSource.close();
    const problems = configSource.status().lastError ?? [];
    throw new EgressdError('EGRESSD_ERR_CONFIG_INVALID', `allowlist from ${config.configPaths.join(', ')}: ${problems.length} error(s): ${problems.slice(0, 3).join('; ')}`, {
      context: { errors: problems.length },
    });
  }

  const sessions = new Set<ServerHttp2Session>();
  const identities = new WeakMap<ServerHttp2Session, CallerIdentity>();
  server = http2.createSecureServer({
    ...serverTlsOptions(credentials!),
    requestCert: true,
    rejectUnauthorized: true,
    allowHTTP1: false,
    minVersion: 'TLSv1.2',
    ALPNProtocols: ['h2'],
    settings: { maxConcurrentStreams: 10_000, initialWindowSize: 1 << 20, enablePush: false },
  });
  const live = server;
  live.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    metrics.handshakeFailures.inc({ reason: handshakeReason(err, socket) });
    logger.debug({ err: errorMessage(err) }, 'TLS handshake refused');
  });
  // Before node's own listener turns the connection into a session: a certificate without a usable SPIFFE ID never gets one.
  live.prependListener('secureConnection', (socket: TLSSocket) => {
    const result = peerIdentity(socket, config.trustDomain);
    if (result.ok) {
      (socket as IdentifiedSocket)[IDENTITY] = result.identity;
      // An agent that vanished without a FIN (node lost, partition) is found by the kernel, not kept forever.
      socket.setKeepAlive(true, 60_000);
      return;
    }
    metrics.handshakeFailures.inc({ reason: result.problem });
    logger.warn({ reason: result.problem, detail: result.detail, src: remote(socket) }, 'caller refused: no usable SPIFFE ID');
    socket.destroy();
  });
  live.on('unknownProtocol', (socket: TLSSocket) => {
    metrics.handshakeFailures.inc({ reason: 'no_h2_alpn' });
    socket.destroy();
  });
  live.on('session', (session: ServerHttp2Session) => {
    const identity = (session.socket as IdentifiedSocket)[IDENTITY];
    if (!identity) {
      session.destroy();
      return;
    }
    identities.set(session, identity);
    sessions.add(session);
    // The connection-level window is 64 KiB by default: one busy tunnel would throttle every other.
    session.setLocalWindowSize(8 << 20);
    metrics.activeSessions.inc();
    session.on('error', (err) => logger.debug({ err: errorMessage(err) }, 'agent session error'));
    session.once('close', () => {
      sessions.delete(session);
      metrics.activeSessions.dec();
    });
    if (stopping) session.close();
  });
  live.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    const identity = identities.get(stream.session as ServerHttp2Session);
    if (!identity) {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    handleTunnel(context, stream, headers, identity, remote(stream.session!.socket as TLSSocket));
  });

  await new Promise<void>((resolve, reject) => {
    live.once('error', (err: NodeJS.ErrnoException) =>
      reject(new EgressdError('EGRESSD_ERR_LISTEN', `gateway cannot listen on ${formatHostPort(config.listen.host, config.listen.port)}: ${err.code ?? err.message}`, { cause: err })),
    );
    live.listen(config.listen.port, config.listen.host, () => resolve());
  }).catch(async (err) => {
    await configSource.close();
    credentialReloader.stop();
    throw err;
  });
  live.on('error', (err) => logger.error({ err: errorMessage(err) }, 'gateway server error'));

  const gateway: Gateway = {
    address: () => live.address() as AddressInfo,
    adminAddress: () => admin?.address(),
    metrics,
    ready: () => !stopping && configSource.current() !== undefined && credentials !== undefined && live.listening,
    async reload(force = false) {
      const [configOutcome, credentialOutcome] = await Promise.all([configSource.reload(force), credentialReloader.check(force)]);
      return { config: configOutcome, credentials: credentialOutcome };
    },
    async close(graceMs = 5000) {
      if (stopping) return;
      stopping = true;
      credentialReloader.stop();
      await configSource.close();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          for (const s of sessions) s.destroy();
        }, graceMs);
        timer.unref();
        live.close(() => {
          clearTimeout(timer);
          resolve();
        });
        for (const s of sessions) s.close();
      });
      httpProxy.close();
      await admin?.close();
    },
  };

  let admin: AdminServer | undefined;
  if (config.admin) {
    try {
      admin = await startAdmin(config.admin, {
        ready: gateway.ready,
        metrics,
        configDump: () => ({
          replica: config.replica,
          trustDomain: config.trustDomain,
          listen: formatHostPort(config.listen.host, (live.address() as AddressInfo).port),
          allowPrivateCidrs: (config.allowPrivateCidrs ?? []).map((c) => c.text),
          config: configDump(configSource),
          credentials: credentials
            ? { version: credentials.version, notAfter: credentials.notAfter.toISOString(), subjectAltName: credentials.subjectAltName, trustAnchors: credentials.trustAnchors, lastError: credentialReloader.lastError }
            : null,
          sessions: sessions.size,
        }),
      });
    } catch (err) {
      await gateway.close(0);
      throw err;
    }
  }
  return gateway;
}

/** The allowlist in force, for /config_dump: the source's status and the resources themselves. */
function configDump(source: ConfigSource): Record<string, unknown> | null {
  const snapshot = source.current();
  if (!snapshot) return null;
  const { lastError, source: from } = source.status();
  return {
    source: from,
    version: snapshot.version,
    files: snapshot.files,
    loadedAt: snapshot.loadedAt.toISOString(),
    warnings: snapshot.warnings.length,
    lastError: lastError === null ? null : `${lastError.length} error(s): ${lastError.join('; ')}`,
    config: snapshot.config,
  };
}

/** As the agent's: a started ClientHello has this long to arrive (agents send it as soon as the tunnel opens). */
const SNIFF_TIMEOUT_MS = 5000;

const IDENTITY = Symbol('egressd.callerIdentity');
type IdentifiedSocket = TLSSocket & { [IDENTITY]?: CallerIdentity };

/** Labels of the handshake-failure metric for TLS errors: the ones that matter to an operator, the rest as `tls_error`. */
function handshakeReason(err: NodeJS.ErrnoException, socket: TLSSocket): string {
  // A certificate that does not verify is dropped by node after the handshake, with only its verify code on the socket.
  const verify = String(socket.authorizationError ?? '');
  if (/EXPIRED/.test(verify)) return 'expired_certificate';
  if (/NOT_YET_VALID/.test(verify)) return 'certificate_not_yet_valid';
  if (verify !== '') return 'untrusted_certificate';
  const text = `${err.code ?? ''} ${err.message}`;
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|CERTIFICATE_REQUIRED/i.test(text)) return 'no_client_certificate';
  if (/no application protocol/i.test(text)) return 'no_h2_alpn';
  if (/wrong version number|http request|UNEXPECTED_MESSAGE|unknown protocol/i.test(text)) return 'not_tls';
  if (/ECONNRESET|socket hang up/i.test(text)) return 'connection_reset';
  return 'tls_error';
}

function remote(socket: TLSSocket | undefined): string | null {
  if (!socket || socket.remoteAddress === undefined || socket.remotePort === undefined) return null;
  const address = socket.remoteAddress.startsWith('::ffff:') && socket.remoteAddress.includes('.') ? socket.remoteAddress.slice(7) : socket.remoteAddress;
  return formatHostPort(address, socket.remotePort);
}
