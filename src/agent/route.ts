import net, { type Socket } from 'node:net';
import type { AuditRoute } from '../core/audit.ts';
import { EgressdError } from '../core/errors.ts';
import { formatHostPort } from '../core/net.ts';

/**
 * The route stage: given an allowed destination, open the upstream
 * connection. `direct` dials the destination itself; the egress gateway
 * route (mTLS to the gateway, which dials on our behalf) will implement the
 * same interface, so the pipeline does not change when it arrives.
 */

export interface RouteTarget {
  /** The decided host (name or IP), for routes that forward by name. */
  host: string;
  port: number;
  /** The address to dial: the original destination, or what the host resolved to. */
  address: string;
}

export interface Route {
  readonly name: AuditRoute;
  /** Resolves once connected; the socket is half-open capable. Rejects with EGRESSD_ERR_UPSTREAM. */
  connect(target: RouteTarget): Promise<Socket>;
}

export function directRoute(options: { connectTimeoutMs: number }): Route {
  return {
    name: 'direct',
    connect(target) {
      return new Promise((resolve, reject) => {
        const socket = net.connect({ host: target.address, port: target.port, allowHalfOpen: true, noDelay: true });
        const fail = (message: string, cause?: unknown): void => {
          socket.destroy();
          const where = formatHostPort(target.address, target.port);
          reject(new EgressdError('EGRESSD_ERR_UPSTREAM', `connect ${where}: ${message}`, { cause, context: { host: target.host, address: where } }));
        };
        socket.setTimeout(options.connectTimeoutMs, () => fail(`no answer within ${options.connectTimeoutMs} ms`));
        socket.once('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message, err));
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
    },
  };
}
