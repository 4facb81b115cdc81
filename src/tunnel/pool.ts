import { EventEmitter } from 'node:events';
import { constants as h2, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { Duplex } from 'node:stream';
import tls, { type PeerCertificate } from 'node:tls';
import { EgressdError, errorMessage } from '../core/errors.ts';
import { DEFAULT_BACKOFF, type BackoffOptions } from './backoff.ts';
import { TUNNEL_RESPONSE_HEADERS, TUNNEL_STATUS, tunnelRequestHeaders, type TunnelRequest } from './protocol.ts';
import { Replica, type ReplicaSettings, type ReplicaState } from './replica.ts';
import { uriSans } from './san.ts';

/**
 * The agent's side of the tunnel: a pool of long-lived mTLS HTTP/2
 * connections to the gateway replicas. Each intercepted connection becomes
 * one CONNECT stream; no TLS handshake per application connection. Replicas
 * are used in turn; one that fails is skipped for a backoff, and a tunnel
 * that could not start on one replica is tried on the next. A refusal by the
 * gateway is a value (`ok: false`), not an error: only "no replica could
 * carry the tunnel" rejects.
 */

/**
 * A gateway replica: `host:port`, or an address found for a name (one
 * `ip:port` per A/AAAA record of a headless Service) with the name to verify
 * the gateway's certificate against when no SPIFFE ID is expected.
 */
export type ReplicaAddress = string | { address: string; servername: string };

export interface GatewayPoolOptions {
  /** Gateway replicas. */
  addresses: readonly ReplicaAddress[];
  /** The agent's current credentials (certificate, key, trust bundle); called for each new connection. */
  secureContext: () => tls.SecureContext;
  /**
   * SPIFFE IDs the gateway may present (URI SAN). When set, they replace the
   * DNS name check: gateways are known by identity, like Istio's peers.
   */
  gatewayIdentities?: readonly string[];
  /** TLS server name to send; default: the replica's host when it is a name. */
  servername?: string;
  /** TCP + TLS connect timeout per replica (default 5000 ms). */
  connectTimeoutMs?: number;
  /** How long the gateway may take to answer a CONNECT (default 30000 ms; it has its own, shorter, dial timeout). */
  openTimeoutMs?: number;
  /** Pings on idle connections find dead replicas (default 10000 ms; 0 disables). */
  pingIntervalMs?: number;
  backoff?: BackoffOptions;
  /** Clock, for tests of the backoff. */
  now?: () => number;
}

export interface OpenTunnel {
  ok: true;
  /** The bytes to and from the destination: end() half-closes, destroy() resets. */
  stream: Duplex;
  /** Address of the replica carrying the tunnel, as given in `addresses`. */
  replica: string;
  /** The gateway's name for itself, as written in its audit records. */
  gatewayReplica: string | null;
  /** `deny` happens for `http` tunnels only: the gateway answers each request with a 404 inside. */
  decision: 'allow' | 'deny';
  reason: string | null;
  rule: string | null;
}

export interface RefusedTunnel {
  ok: false;
  /** The HTTP/2 status: 403 refused by policy or destination checks, 502/504 unreachable, 400 bad request, 503 not ready. */
  status: number;
  reason: string | null;
  rule: string | null;
  replica: string;
  gatewayReplica: string | null;
}

/** `failovers`: the replicas tried first that could not take the tunnel, each as `address: why`. */
export type TunnelResult = (OpenTunnel | RefusedTunnel) & { failovers?: string[] };

export interface OpenOptions {
  /** Aborting (the application went away) cancels the CONNECT. */
  signal?: AbortSignal;
}

export interface ReplicaStatus {
  address: string;
  state: ReplicaState;
  failures: number;
  retryInMs: number;
  activeTunnels: number;
  lastError: string | null;
}

export interface GatewayPoolEvents {
  /** A replica failed (connection, handshake, session) and is skipped for `retryInMs`. */
  'replica-down': [{ replica: string; error: Error; retryInMs: number; failures: number }];
  /** A replica (re)connected. */
  'replica-up': [{ replica: string }];
  /** A tunnel could not start on `from` and moves on to the next replica. */
  failover: [{ from: string; error: Error }];
}

/** Failures before the gateway answered, which another replica may not share. */
class ReplicaFailure extends Error {}

export class GatewayPool extends EventEmitter<GatewayPoolEvents> {
  #replicas: Replica[];
  readonly #settings: ReplicaSettings;
  readonly #openTimeoutMs: number;
  #next = 0;
  #closed = false;

  constructor(options: GatewayPoolOptions) {
    super();
    if (options.addresses.length === 0) throw new EgressdError('EGRESSD_ERR_USAGE', 'a gateway pool needs at least one replica address');
    const identities = options.gatewayIdentities;
    const settings = {
      secureContext: options.secureContext,
      ...(options.servername === undefined ? {} : { servername: options.servername }),
      checkServerIdentity: (host: string, cert: PeerCertificate): Error | undefined =>
        identities && identities.length > 0 ? checkGatewayIdentity(cert, identities) : tls.checkServerIdentity(host, cert),
      connectTimeoutMs: options.connectTimeoutMs ?? 5000,
      pingIntervalMs: options.pingIntervalMs ?? 10_000,
      backoff: options.backoff ?? DEFAULT_BACKOFF,
      now: options.now ?? Date.now,
      onUp: (replica: Replica) => this.emit('replica-up', { replica: replica.address }),
      onDown: (replica: Replica, error: Error, retryInMs: number) =>
        this.emit('replica-down', { replica: replica.address, error, retryInMs, failures: replica.failures }),
    };
    this.#settings = settings;
    this.#replicas = options.addresses.map((a) => this.#replica(a));
    this.#openTimeoutMs = options.openTimeoutMs ?? 30_000;
  }

  /**
   * Opens a tunnel. Resolves with the open stream, or with the gateway's
   * refusal; rejects (EGRESSD_ERR_UPSTREAM) only when no replica could be
   * reached, or the gateway did not answer within `openTimeoutMs`.
   */
  async open(request: TunnelRequest, options: OpenOptions = {}): Promise<TunnelResult> {
    if (this.#closed) throw new EgressdError('EGRESSD_ERR_UPSTREAM', 'the gateway pool is closed');
    const errors: string[] = [];
    const tried = new Set<Replica>();
    for (let replica = this.#pick(tried); replica; replica = this.#pick(tried)) {
      tried.add(replica);
      options.signal?.throwIfAborted();
      let failure: Error;
      try {
        const session = await replica.session();
        const result = await this.#request(replica, session, request, options.signal);
        return errors.length === 0 ? result : { ...result, failovers: errors };
      } catch (err) {
        // Connect failures (EGRESSD_ERR_UPSTREAM from the replica) and ReplicaFailure are the replica's; the rest end the open.
        const connectFailure = err instanceof EgressdError && err.code === 'EGRESSD_ERR_UPSTREAM' && err.context.phase !== 'open';
        if (!(err instanceof ReplicaFailure) && !connectFailure) throw err;
        failure = err as Error;
      }
      errors.push(`${replica.address}: ${errorMessage(failure)}`);
      this.emit('failover', { from: replica.address, error: failure });
    }
    const down = this.#replicas.filter((r) => !tried.has(r)).map((r) => `${r.address}: down, retry in ${r.retryInMs()} ms`);
    throw new EgressdError('EGRESSD_ERR_UPSTREAM', `no gateway replica could open the tunnel (${[...errors, ...down].join('; ')})`, {
      context: { host: request.host, port: request.port, errors, down },
    });
  }

  replicas(): ReplicaStatus[] {
    return this.#replicas.map((r) => ({
      address: r.address,
      state: r.state,
      failures: r.failures,
      retryInMs: r.retryInMs(),
      activeTunnels: r.activeStreams,
      lastError: r.lastError ?? null,
    }));
  }

  /**
   * Replaces the replica list (the gateway Service's addresses changed): replicas
   * still listed keep their connection and backoff; the others leave the rotation
   * and their open tunnels finish on their connection.
   */
  setAddresses(addresses: readonly ReplicaAddress[]): void {
    if (addresses.length === 0) throw new EgressdError('EGRESSD_ERR_USAGE', 'a gateway pool needs at least one replica address');
    const kept = new Map(this.#replicas.map((r) => [r.address, r]));
    this.#replicas = addresses.map((a) => {
      const replica = kept.get(addressOf(a));
      kept.delete(addressOf(a));
      return replica ?? this.#replica(a);
    });
    for (const gone of kept.values()) gone.retire();
    this.#next %= this.#replicas.length;
  }

  /** New credentials: open tunnels finish on the old connections, new tunnels use new ones. */
  refresh(): void {
    for (const replica of this.#replicas) replica.retire();
  }

  /** Stops opening tunnels and closes the connections, letting open tunnels finish within `graceMs`. */
  async close(graceMs = 5000): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#replicas.map((r) => r.close(graceMs)));
  }

  #replica(address: ReplicaAddress): Replica {
    return typeof address === 'string' ? new Replica(address, this.#settings) : new Replica(address.address, { ...this.#settings, servername: address.servername });
  }

  /** Round robin over the replicas that may be tried, skipping those already tried for this tunnel. */
  #pick(tried: ReadonlySet<Replica>): Replica | undefined {
    const n = this.#replicas.length;
    for (let i = 0; i < n; i++) {
      const replica = this.#replicas[(this.#next + i) % n]!;
      if (!tried.has(replica) && replica.available()) {
        this.#next = (this.#next + i + 1) % n;
        return replica;
      }
    }
    return undefined;
  }

  #request(replica: Replica, session: ClientHttp2Session, request: TunnelRequest, signal: AbortSignal | undefined): Promise<TunnelResult> {
    return new Promise<TunnelResult>((resolve, reject) => {
      let stream: ClientHttp2Stream;
      try {
        stream = session.request(tunnelRequestHeaders(request), { endStream: false });
      } catch (err) {
        // The session went away between the pick and the request (GOAWAY, destroyed).
        replica.retire();
        reject(new ReplicaFailure(errorMessage(err)));
        return;
      }
      replica.track(stream);
      let answered = false;
      const timer = setTimeout(() => {
        stream.close(h2.NGHTTP2_CANCEL);
        finish(new EgressdError('EGRESSD_ERR_UPSTREAM', `gateway ${replica.address} did not answer the tunnel within ${this.#openTimeoutMs} ms`, {
          context: { phase: 'open', replica: replica.address },
        }));
      }, this.#openTimeoutMs);
      const onAbort = (): void => {
        stream.close(h2.NGHTTP2_CANCEL);
        finish(signal!.reason instanceof Error ? signal!.reason : new Error('aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const finish = (result: TunnelResult | Error): void => {
        if (answered) return;
        answered = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        stream.off('close', onClose);
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      const onClose = (): void => {
        // No answer: the stream was reset or the session died under it; the replica is at fault, another may do.
        const code = stream.rstCode;
        const error = new ReplicaFailure(`tunnel stream closed before the gateway answered (code ${code ?? 'none'})`);
        if (session.destroyed || session.closed || code === h2.NGHTTP2_REFUSED_STREAM) {
          if (session.destroyed && replica.state === 'up') replica.fail(error);
          finish(error);
        } else {
          finish(new EgressdError('EGRESSD_ERR_UPSTREAM', `${error.message}`, { context: { phase: 'open', replica: replica.address, code } }));
        }
      };
      stream.once('close', onClose);
      // Errors are reported through 'close' (rstCode) and by the session; without a listener they would throw.
      stream.on('error', () => {});
      stream.once('response', (headers: IncomingHttpHeaders) => {
        const status = Number(headers[':status']);
        const common = {
          replica: replica.address,
          gatewayReplica: header(headers, TUNNEL_RESPONSE_HEADERS.replica),
          reason: header(headers, TUNNEL_RESPONSE_HEADERS.reason),
          rule: header(headers, TUNNEL_RESPONSE_HEADERS.rule),
        };
        if (status === TUNNEL_STATUS.ok) {
          const decision = header(headers, TUNNEL_RESPONSE_HEADERS.decision) === 'deny' ? 'deny' : 'allow';
          finish({ ok: true, stream, decision, ...common });
        } else {
          stream.close(h2.NGHTTP2_NO_ERROR);
          finish({ ok: false, status, ...common });
        }
      });
    });
  }
}

function addressOf(address: ReplicaAddress): string {
  return typeof address === 'string' ? address : address.address;
}

function header(headers: IncomingHttpHeaders, name: string): string | null {
  const value = headers[name];
  const v = Array.isArray(value) ? value[0] : value;
  return v === undefined || v === '' ? null : v;
}

/** The gateway must present one of the expected SPIFFE IDs as a URI SAN. */
function checkGatewayIdentity(cert: PeerCertificate, identities: readonly string[]): Error | undefined {
  const uris = uriSans(cert.subjectaltname);
  if (uris.some((uri) => identities.includes(uri))) return undefined;
  return new EgressdError('EGRESSD_ERR_UPSTREAM', `gateway certificate names ${uris.join(', ') || 'no URI'}, expected ${identities.join(' or ')}`);
}
