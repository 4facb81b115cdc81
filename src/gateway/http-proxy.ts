import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import { errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { normalizeHost } from '../core/net.ts';
import type { GatewayMetrics } from './metrics.ts';
import { createTunnelHttpServer, serveTunnelHttp } from './stream-duplex.ts';
import type { HttpTunnel } from './tunnel.ts';
import { TunnelRecord, type GatewayReason, type RecordContext } from './tunnel-record.ts';
import { DialError, UpstreamAgent, type UpstreamAgentOptions, type UpstreamTarget } from './upstream-agent.ts';

/**
 * HTTP tunnels: node:http parses the application's HTTP/1.1 requests from
 * the tunnel stream (keep-alive, chunked bodies), and each request is sent
 * on, as HTTPS when a rule originates TLS, with x-forwarded-client-cert
 * naming the caller and an x-request-id. Denied tunnels answer 404 to every
 * request, like Istio's blackhole route. One audit record per request.
 */

export interface HttpProxyOptions extends UpstreamAgentOptions {
  records: RecordContext;
  metrics: GatewayMetrics;
  logger: Logger;
  /** The gateway's own SPIFFE ID (`By=` in x-forwarded-client-cert), when its certificate has one. */
  gatewayIdentity: () => string | null;
  idleTimeoutMs: number;
}

/** Hop-by-hop headers (RFC 9110 7.6.1) and the ones the gateway sets itself. */
const DROPPED = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
const XFCC = 'x-forwarded-client-cert';
const REQUEST_ID = 'x-request-id';
/** At most this many destinations keep idle connections; the least recently used is dropped. */
const MAX_AGENTS = 512;

export class HttpProxy {
  readonly #options: HttpProxyOptions;
  readonly #server: http.Server;
  readonly #tunnels = new WeakMap<Duplex, { tunnel: HttpTunnel; requests: number }>();
  readonly #agents = new Map<string, UpstreamAgent>();
  /** Each tunnel's key into #agents, made once: the key holds the rule's TLS settings (CA PEMs included), too long to rebuild per request. */
  readonly #agentKeys = new WeakMap<HttpTunnel, { key: string; target: UpstreamTarget }>();

  constructor(options: HttpProxyOptions) {
    this.#options = options;
    this.#server = createTunnelHttpServer({ keepAliveTimeout: options.idleTimeoutMs, requestTimeout: 0 }, (req, res) => this.#handle(req, res));
    this.#server.on('clientError', (err, socket) => {
      options.logger.debug({ err }, 'unparsable HTTP in a tunnel');
      if (!socket.destroyed) socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    });
  }

  /** Takes over a tunnel stream that was answered 200. */
  serve(stream: ServerHttp2Stream, tunnel: HttpTunnel): void {
    const served = { tunnel, requests: 0 };
    const socket = serveTunnelHttp(this.#server, stream);
    this.#tunnels.set(socket, served);
    const { metrics } = this.#options;
    metrics.activeTunnels.inc({ protocol: 'http' });
    stream.once('close', () => {
      metrics.activeTunnels.dec({ protocol: 'http' });
      // A tunnel that carried no request still leaves a record.
      if (served.requests === 0) {
        const record = this.#record(tunnel);
        record.error('the tunnel closed before a complete HTTP request');
        record.finish();
      }
    });
  }

  /** New requests get new connections, e.g. when the rules changed; requests under way finish on theirs. */
  reset(): void {
    for (const agent of this.#agents.values()) agent.retire();
    this.#agents.clear();
  }

  close(): void {
    for (const agent of this.#agents.values()) agent.destroy();
    this.#agents.clear();
    this.#server.close();
  }

  #record(tunnel: HttpTunnel): TunnelRecord {
    const record = new TunnelRecord(this.#options.records, tunnel.identity, tunnel.src, tunnel.request);
    record.protocol('http');
    record.decided(tunnel.authorization.decision);
    return record;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const served = this.#tunnels.get(req.socket);
    if (!served) {
      res.writeHead(500).end();
      return;
    }
    served.requests++;
    const { tunnel } = served;
    const record = this.#record(tunnel);
    const requestId = single(req.headers[REQUEST_ID]) ?? randomUUID();
    const target = requestTarget(req);
    record.http({ method: req.method ?? null, path: target.path }, requestId);
    res.once('close', () => {
      // A response never begun (the application went away first) has no status.
      const status = res.headersSent ? res.statusCode : null;
      record.http({ status });
      this.#options.metrics.httpRequests.inc({ status: status === null ? 'none' : `${Math.floor(status / 100)}xx` });
      record.finish();
    });
    const { decision } = tunnel.authorization;
    if (!decision.allow) return refuse(res, record, 404, undefined);
    if (target.host !== tunnel.request.host) {
      return refuse(res, record, 404, ['host_mismatch', `request host "${target.host}" is not the tunnel's host ${tunnel.request.host}`]);
    }
    this.#forward(req, res, tunnel, record, target.path, requestId);
  }

  #forward(req: IncomingMessage, res: ServerResponse, tunnel: HttpTunnel, record: TunnelRecord, path: string, requestId: string): void {
    const { decision, xfcc } = tunnel.authorization;
    const headers: OutgoingHttpHeaders = {};
    const connectionTokens = new Set((single(req.headers.connection) ?? '').split(',').map((t) => t.trim().toLowerCase()));
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || DROPPED.has(name) || connectionTokens.has(name) || name === XFCC) continue;
      headers[name] = value;
    }
    headers[REQUEST_ID] = requestId;
    if (decision.tls && xfcc) headers[XFCC] = xfccValue(this.#options.gatewayIdentity(), tunnel);
    const upstreamReq = http.request({
      agent: this.#agent(tunnel),
      method: req.method,
      path,
      headers,
      setHost: false,
    });
    upstreamReq.on('response', (upstreamRes) => {
      // The pooled connection this request went out on: the address the gateway really dialled.
      const { remoteAddress, remotePort } = upstreamRes.socket ?? {};
      if (remoteAddress !== undefined && remotePort !== undefined) record.destination(remoteAddress, remotePort);
      const out: OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(upstreamRes.headers)) {
        if (value !== undefined && !DROPPED.has(name)) out[name] = value;
      }
      upstreamRes.on('data', (chunk: Buffer) => record.addBytes(0, chunk.length));
      upstreamRes.once('aborted', () => record.error('the destination aborted the response'));
      res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, out);
      upstreamRes.pipe(res);
    });
    upstreamReq.on('error', (err) => {
      if (res.headersSent) {
        record.error(errorMessage(err));
        res.destroy();
        return;
      }
      if (err instanceof DialError && err.failure === 'forbidden_address') return refuse(res, record, 403, ['forbidden_address', err.message]);
      record.error(errorMessage(err));
      const status = err instanceof DialError && err.failure === 'timeout' ? 504 : 502;
      res.writeHead(status, { 'content-type': 'text/plain', connection: 'close' }).end(`egressd gateway: ${errorMessage(err)}\n`);
    });
    res.once('close', () => {
      if (!res.writableFinished) upstreamReq.destroy();
    });
    req.pipe(upstreamReq);
    req.on('data', (chunk: Buffer) => record.addBytes(chunk.length, 0));
  }

  #agent(tunnel: HttpTunnel): UpstreamAgent {
    let keyed = this.#agentKeys.get(tunnel);
    if (!keyed) {
      const { decision, listed } = tunnel.authorization;
      const { host, port } = tunnel.request;
      const target = { host, port: decision.tls?.port ?? decision.upstream?.port ?? port, upstream: decision.upstream, listed, tls: decision.tls };
      keyed = { key: JSON.stringify([target.host, target.port, target.upstream, listed.map((c) => c.text), target.tls]), target };
      this.#agentKeys.set(tunnel, keyed);
    }
    const { key, target } = keyed;
    let agent = this.#agents.get(key);
    if (agent) {
      this.#agents.delete(key);
    } else {
      agent = new UpstreamAgent(target, this.#options);
      if (this.#agents.size >= MAX_AGENTS) {
        const oldest = this.#agents.keys().next().value!;
        this.#agents.get(oldest)!.retire();
        this.#agents.delete(oldest);
      }
    }
    this.#agents.set(key, agent);
    return agent;
  }
}

function refuse(res: ServerResponse, record: TunnelRecord, status: number, refusal: [GatewayReason, string] | undefined): void {
  if (refusal) record.refused(refusal[0], refusal[1]);
  res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 404 ? 'egressd gateway: no route to this host\n' : `egressd gateway: ${refusal?.[1] ?? 'refused'}\n`);
}

/** Envoy's format: `By=<this proxy>;Hash=<client cert sha256>;URI=<client SPIFFE ID>`. */
function xfccValue(gateway: string | null, tunnel: HttpTunnel): string {
  const parts: string[] = [];
  if (gateway !== null) parts.push(`By=${gateway}`);
  if (tunnel.identity.certificateSha256 !== undefined) parts.push(`Hash=${tunnel.identity.certificateSha256}`);
  parts.push(`URI=${tunnel.identity.spiffeId}`);
  return parts.join(';');
}

/** The host a request names (Host header, or an absolute URI) and the path to send on. */
function requestTarget(req: IncomingMessage): { host: string; path: string } {
  const url = req.url ?? '/';
  if (!url.startsWith('/')) {
    try {
      const absolute = new URL(url);
      return { host: normalizeHost(absolute.hostname), path: `${absolute.pathname}${absolute.search}` };
    } catch {
      return { host: '', path: url };
    }
  }
  const host = single(req.headers.host) ?? '';
  return { host: normalizeHost(host.replace(/:\d+$/, '')), path: url };
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
