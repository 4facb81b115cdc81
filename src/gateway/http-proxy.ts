import type { ServerHttp2Stream } from 'node:http2';
import type { Logger } from '../core/logger.ts';
import { HttpRelay } from './http-relay.ts';
import type { GatewayMetrics } from './metrics.ts';
import type { HttpTunnel } from './tunnel.ts';
import { TunnelRecord, type RecordContext } from './tunnel-record.ts';
import { dialUpstream, type UpstreamDialOptions, type UpstreamTarget } from './upstream-dial.ts';
import { UpstreamPool } from './upstream-pool.ts';

/**
 * HTTP tunnels: each is relayed request by request (http-relay.ts) to its
 * destination, as HTTPS when a rule originates TLS, with
 * x-forwarded-client-cert naming the caller and an x-request-id. Denied
 * tunnels answer 404 to every request, like Istio's blackhole route. One
 * audit record per request. Connections to destinations are kept between
 * tunnels (upstream-pool.ts).
 */

export interface HttpProxyOptions extends UpstreamDialOptions {
  records: RecordContext;
  metrics: GatewayMetrics;
  logger: Logger;
  /** The gateway's own SPIFFE ID (`By=` in x-forwarded-client-cert), when its certificate has one. */
  gatewayIdentity: () => string | null;
  idleTimeoutMs: number;
}

/** Idle connections kept per destination, destinations kept, and how long an idle connection stays. */
const POOL = { maxIdlePerKey: 32, maxKeys: 512, idleTimeoutMs: 60_000 };

export class HttpProxy {
  readonly #options: HttpProxyOptions;
  readonly #pool = new UpstreamPool(POOL);

  constructor(options: HttpProxyOptions) {
    this.#options = options;
  }

  /** Takes over a tunnel stream that was answered 200. */
  serve(stream: ServerHttp2Stream, tunnel: HttpTunnel): void {
    const { metrics, records } = this.#options;
    const { decision, listed, xfcc } = tunnel.authorization;
    const { host, port } = tunnel.request;
    const target: UpstreamTarget = { host, port: decision.tls?.port ?? decision.upstream?.port ?? port, upstream: decision.upstream, listed, tls: decision.tls };
    // The key holds everything that shaped a connection, the rule's TLS settings (CA PEMs included) too: made once per tunnel.
    const key = JSON.stringify([target.host, target.port, target.upstream, listed.map((c) => c.text), target.tls]);
    metrics.activeTunnels.inc({ protocol: 'http' });
    stream.once('close', () => metrics.activeTunnels.dec({ protocol: 'http' }));
    new HttpRelay(stream, tunnel, {
      record: () => {
        const record = new TunnelRecord(records, tunnel.identity, tunnel.src, tunnel.request);
        record.protocol('http');
        record.decided(decision);
        return record;
      },
      connect: async () => {
        const generation = this.#pool.generation;
        const pooled = this.#pool.take(key);
        return { socket: pooled ?? (await dialUpstream(target, this.#options)), generation };
      },
      release: (socket, generation) => this.#pool.give(key, socket, generation),
      xfcc: decision.tls && xfcc ? xfccValue(this.#options.gatewayIdentity(), tunnel) : undefined,
      onResponse: (status) => metrics.httpRequests.inc({ status: status === null ? 'none' : `${Math.floor(status / 100)}xx` }),
      idleTimeoutMs: this.#options.idleTimeoutMs,
    });
  }

  /** New requests get new connections, e.g. when the rules changed; requests under way finish on theirs. */
  reset(): void {
    this.#pool.reset();
  }

  close(): void {
    this.#pool.reset();
  }
}

/** Envoy's format: `By=<this proxy>;Hash=<client cert sha256>;URI=<client SPIFFE ID>`. */
function xfccValue(gateway: string | null, tunnel: HttpTunnel): string {
  const parts: string[] = [];
  if (gateway !== null) parts.push(`By=${gateway}`);
  if (tunnel.identity.certificateSha256 !== undefined) parts.push(`Hash=${tunnel.identity.certificateSha256}`);
  parts.push(`URI=${tunnel.identity.spiffeId}`);
  return parts.join(';');
}
