import net, { isIP, type Socket } from 'node:net';
import type { DuplexOptions } from 'node:stream';
import type { AuditRoute } from '../core/audit.ts';
import type { TunnelProtocol } from '../tunnel/protocol.ts';
import { errorMessage } from '../core/errors.ts';
import { formatHostPort } from '../core/net.ts';
import { applyConnectTo, type ConnectToEntry, type Endpoint } from './connect-to.ts';
import type { Resolver } from './resolve.ts';
import type { UpstreamSocket } from './tunnel-socket.ts';
import { SPLICE_BUFFER_BYTES } from './splice.ts';

/**
 * The route stage: given an allowed destination, open the upstream
 * connection. `direct` dials the destination itself; `gateway`
 * (gateway-route.ts) opens a tunnel through the egress gateway, which
 * decides again and dials on our behalf. A failure or a refusal is a value,
 * like a decision: the pipeline refuses with it.
 */

export interface RouteTarget {
  /** The decided host (name or IP) and the port the client asked for: what a route forwarding by name sends on. */
  host: string;
  port: number;
  /** Where the destination is, in the order to try: IPs, or names to resolve (upstream-plan.ts). */
  endpoints: readonly Endpoint[];
  /** What the client spoke, once sniffed; the gateway route opens its tunnel for it (unknown: `tcp`). */
  protocol?: TunnelProtocol;
  /** The ClientHello's server name, the first request's Host: the gateway checks them against the host. */
  sni?: string;
  httpHost?: string;
  /** The IP and port the client dialled (transparent path). */
  originalDst?: Endpoint;
  /** The audit record's connection id, for the gateway's record of the same connection. */
  connectionId?: string;
}

/** The egress gateway said no: its status, reason and rule, for the audit record and the client's refusal. */
export interface GatewayRefusal {
  status: number;
  reason: string;
  rule: string | null;
}

/** Gateway replicas tried before the one that answered, each as `address: why` (they could not take the tunnel). */
type Failovers = { failovers?: string[] };

export type RouteResult = Failovers &
  (
  | {
      ok: true;
      socket: UpstreamSocket;
      /** What was dialled (direct). */
      dst?: Endpoint;
      /** The gateway replica that carries it. */
      replica?: string;
      /** An HTTP tunnel the gateway opened to answer its requests itself (404), having denied them. */
      denied?: GatewayRefusal;
    }
  /** `loop`: every address was one of the agent's own listeners. `dst`: the last address tried, if any. */
  | { ok: false; reason: 'loop' | 'upstream_unreachable'; detail: string; dst?: Endpoint; replica?: string }
  | { ok: false; reason: 'gateway_refused'; refusal: GatewayRefusal; detail: string; replica: string }
  );

export interface Route {
  readonly name: AuditRoute;
  /**
   * The route needs what the client says first (protocol, SNI, Host) to
   * connect: an explicit proxy CONNECT is then answered 200 before the route
   * connects, and a refusal reaches the client in the protocol it spoke inside.
   */
  readonly connectsAfterSniff: boolean;
  /** Resolves once connected (the socket is half-open capable), or with why it could not. Never rejects. */
  connect(target: RouteTarget): Promise<RouteResult>;
}

export interface DirectRouteOptions {
  connectTimeoutMs: number;
  /** `--connect-to` rewrites, applied to each endpoint before it is resolved. */
  connectTo: readonly ConnectToEntry[];
  resolve: Resolver;
  /** Whether an address is one of the agent's own listeners (a connection there would loop). */
  isOwnListener(address: string, port: number): boolean;
}

/** Each endpoint in turn (after --connect-to), each of its addresses in turn; the first that answers wins. */
export function directRoute(options: DirectRouteOptions): Route {
  return {
    name: 'direct',
    connectsAfterSniff: false,
    async connect(target) {
      const failures: string[] = [];
      let tried: Endpoint | undefined;
      let loops = 0;
      for (const original of target.endpoints) {
        const endpoint = applyConnectTo(options.connectTo, original, target);
        let addresses: string[];
        try {
          addresses = isIP(endpoint.host) ? [endpoint.host] : await options.resolve(endpoint.host, endpoint.port);
        } catch (err) {
          failures.push(errorMessage(err));
          continue;
        }
        for (const address of addresses) {
          tried = { host: address, port: endpoint.port };
          if (options.isOwnListener(address, endpoint.port)) {
            loops++;
            failures.push(`${formatHostPort(address, endpoint.port)} is the agent itself`);
            continue;
          }
          try {
            return { ok: true, socket: await dial(address, endpoint.port, options.connectTimeoutMs), dst: tried };
          } catch (err) {
            failures.push(`connect ${formatHostPort(address, endpoint.port)}: ${errorMessage(err)}`);
          }
        }
      }
      const detail = failures.length > 0 ? failures.join('; ') : `no endpoint for ${formatHostPort(target.host, target.port)}`;
      return { ok: false, reason: loops > 0 && loops === failures.length ? 'loop' : 'upstream_unreachable', detail, ...(tried ? { dst: tried } : {}) };
    },
  };
}

function dial(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // net.Socket passes its options on to Duplex (Node 20), whose stream buffer sizes @types/node does not list for connect().
    const options: net.NetConnectOpts & DuplexOptions = { host, port, allowHalfOpen: true, noDelay: true, readableHighWaterMark: SPLICE_BUFFER_BYTES, writableHighWaterMark: SPLICE_BUFFER_BYTES };
    const socket = net.connect(options);
    const fail = (message: string): void => {
      socket.destroy();
      reject(new Error(message));
    };
    socket.setTimeout(timeoutMs, () => fail(`no answer within ${timeoutMs} ms`));
    socket.once('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message));
    socket.once('connect', () => {
      socket.setTimeout(0);
      socket.removeAllListeners('error');
      socket.removeAllListeners('timeout');
      // Until the splice stage takes over (a tunnel may still be sniffed), an upstream reset must not go unhandled;
      // the splice sees the closed socket and reports it.
      socket.on('error', () => undefined);
      resolve(socket);
    });
  });
}
