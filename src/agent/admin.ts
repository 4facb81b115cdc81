import http from 'node:http';
import type { Registry } from 'prom-client';
import { renderMetrics } from '../core/metrics.ts';

/**
 * The admin listener (127.0.0.1:15000 by default), with Envoy's paths so
 * that people and probes used to Istio find them:
 *   /healthz/ready     200 once listeners are up and a config is loaded, else 503
 *   /stats/prometheus  metrics
 *   /config_dump       what is loaded, from where, the last reload and the options
 *   /certs             the workload certificate: identity, serial, validity, renewals
 */
export interface AdminState {
  ready(): { ready: boolean; why?: string };
  configDump(): unknown;
  certs(): unknown;
  registry: Registry;
}

export function createAdminServer(state: AdminState): http.Server {
  return http.createServer((req, res) => {
    // No Date header: formatting it loads ICU's time-zone data into the sidecar for good (src/core/iso-time.ts).
    res.sendDate = false;
    const path = (req.url ?? '/').split('?', 1)[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    switch (path) {
      case '/healthz/ready': {
        const { ready, why } = state.ready();
        send(res, ready ? 200 : 503, 'text/plain; charset=utf-8', ready ? 'LIVE\n' : `NOT READY: ${why ?? ''}\n`);
        return;
      }
      case '/stats/prometheus':
        renderMetrics(state.registry).then(
          ({ contentType, body }) => send(res, 200, contentType, body),
          (err: Error) => send(res, 500, 'text/plain; charset=utf-8', `${err.message}\n`),
        );
        return;
      case '/config_dump':
        send(res, 200, 'application/json', `${JSON.stringify(state.configDump(), null, 2)}\n`);
        return;
      case '/certs':
        send(res, 200, 'application/json', `${JSON.stringify(state.certs(), null, 2)}\n`);
        return;
      default:
        send(res, 404, 'text/plain; charset=utf-8', 'not found: try /healthz/ready, /stats/prometheus, /config_dump, /certs\n');
    }
  });
}

function send(res: http.ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
