import net, { isIP, type Socket } from 'node:net';
import type { AuditRoute } from '../core/audit.ts';
import { errorMessage } from '../core/errors.ts';
import { formatHostPort } from '../core/net.ts';
import { applyConnectTo, type ConnectToEntry, type Endpoint } from './connect-to.ts';
import type { Resolver } from './resolve.ts';

/**
 * The route stage: given an allowed destination, open the upstream
 * connection. `direct` dials the destination itself; the egress gateway
 * route (mTLS to the gateway, which dials on our behalf) implements the
 * same interface, so the pipeline does not change when it arrives.
 * A failure is a value, like a decision: the pipeline refuses with it.
 */

export interface RouteTarget {
  /** The decided host (name or IP) and the port the client asked for: what a route forwarding by name sends on. */
  host: string;
  port: number;
  /** Where the destination is, in the order to try: IPs, or names to resolve (upstream-plan.ts). */
  endpoints: readonly Endpoint[];
}

export type RouteResult =
  | { ok: true; socket: Socket; dst: Endpoint }
  /** `loop`: every address was one of the agent's own listeners. `dst`: the last address tried, if any. */
  | { ok: false; reason: 'loop' | 'upstream_unreachable'; detail: string; dst?: Endpoint };

export interface Route {
  readonly name: AuditRoute;
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
    const socket = net.connect({ host, port, allowHalfOpen: true, noDelay: true });
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
