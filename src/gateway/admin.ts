import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { EgressdError } from '../core/errors.ts';
import { renderMetrics } from '../core/metrics.ts';
import { formatHostPort } from '../core/net.ts';
import type { GatewayMetrics } from './metrics.ts';

/**
 * Plain-HTTP admin endpoints for probes and operators, on their own port:
 * /healthz/ready, /stats/prometheus, /config_dump (the loaded allowlist,
 * credential facts, never key material).
 */

export interface AdminHandlers {
  ready: () => boolean;
  metrics: GatewayMetrics;
  configDump: () => unknown;
}

export interface AdminServer {
  address(): AddressInfo;
  close(): Promise<void>;
}

export async function startAdmin(listen: { host: string; port: number }, handlers: AdminHandlers): Promise<AdminServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    switch (path) {
      case '/healthz/ready': {
        const ready = handlers.ready();
        res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'not ready\n');
        return;
      }
      case '/stats/prometheus':
        renderMetrics(handlers.metrics.registry).then(
          ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
          (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
        );
        return;
      case '/config_dump':
        res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(handlers.configDump(), dumpReplacer, 2)}\n`);
        return;
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: /healthz/ready, /stats/prometheus, /config_dump\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new EgressdError('EGRESSD_ERR_LISTEN', `gateway admin cannot listen on ${formatHostPort(listen.host, listen.port)}: ${err.code ?? err.message}`, { cause: err })),
    );
    server.listen(listen.port, listen.host, () => resolve());
  });
  return {
    address: () => server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Maps and Sets (in the compiled config) as JSON. */
function dumpReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Map) return Object.fromEntries(value);
  if (value instanceof Set) return [...value];
  return value;
}
