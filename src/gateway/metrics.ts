import { Counter, Gauge, Registry } from 'prom-client';

/**
 * The gateway's Prometheus metrics, one registry per gateway (tests run
 * several in one process). Names and labels are documented in docs/gateway.md.
 */
export interface GatewayMetrics {
  registry: Registry;
  /** Tunnels by decision (allow/deny) and reason; HTTP tunnels count once per request. */
  tunnels: Counter<'decision' | 'reason' | 'protocol'>;
  /** Handshakes refused: TLS errors (no or bad client certificate) and verified certificates without a usable SPIFFE ID. */
  handshakeFailures: Counter<'reason'>;
  activeTunnels: Gauge<'protocol'>;
  activeSessions: Gauge;
  /** Bytes to (sent) and from (received) destinations. */
  bytes: Counter<'direction'>;
  /** Originated HTTP requests by upstream status class (2xx.. 5xx) or the gateway's own answer. */
  httpRequests: Counter<'status'>;
  reloads: Counter<'what' | 'outcome'>;
}

export function createGatewayMetrics(): GatewayMetrics {
  const registry = new Registry();
  const registers = [registry];
  return {
    registry,
    tunnels: new Counter({
      name: 'egressd_gateway_tunnels_total',
      help: 'Tunnels (and HTTP requests in HTTP tunnels) by decision and reason',
      labelNames: ['decision', 'reason', 'protocol'],
      registers,
    }),
    handshakeFailures: new Counter({
      name: 'egressd_gateway_handshake_failures_total',
      help: 'Connections refused during or right after the mTLS handshake, by reason',
      labelNames: ['reason'],
      registers,
    }),
    activeTunnels: new Gauge({ name: 'egressd_gateway_active_tunnels', help: 'Tunnels open now', labelNames: ['protocol'], registers }),
    activeSessions: new Gauge({ name: 'egressd_gateway_active_sessions', help: 'Agent connections (HTTP/2 sessions) open now', registers }),
    bytes: new Counter({
      name: 'egressd_gateway_bytes_total',
      help: 'Bytes sent to (sent) and received from (received) destinations',
      labelNames: ['direction'],
      registers,
    }),
    httpRequests: new Counter({
      name: 'egressd_gateway_http_requests_total',
      help: 'HTTP requests proxied in HTTP tunnels, by response status class',
      labelNames: ['status'],
      registers,
    }),
    reloads: new Counter({
      name: 'egressd_gateway_reloads_total',
      help: 'Reloads of configuration and credentials, by outcome',
      labelNames: ['what', 'outcome'],
      registers,
    }),
  };
}
