import { isIP } from 'node:net';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import { formatHostPort, normalizeHost } from '../core/net.ts';

/**
 * The tunnel between agent and gateway: one HTTP/2 `CONNECT` stream per
 * intercepted connection (`:method CONNECT`, `:authority host:port`), over a
 * long-lived mutual-TLS connection that carries many streams, like Istio's
 * HBONE but without extended CONNECT. The request headers below say what the
 * agent saw; the gateway treats them as hints and decides on its own (it
 * knows the caller from its certificate, and resolves names itself).
 * Documented in docs/gateway.md.
 */

/** Request headers (HTTP/2 header names are lower case). */
export const TUNNEL_HEADERS = {
  /** The IP:port the application dialled (`10.0.0.5:443`, `[2001:db8::1]:443`). */
  originalDst: 'egressd-original-dst',
  /** The TLS server name of the application's ClientHello. */
  sni: 'egressd-sni',
  /** The HTTP Host of the application's first request. */
  httpHost: 'egressd-host',
  /** What the agent saw on the wire: `tls`, `http` or `tcp`. */
  protocol: 'egressd-protocol',
  /** The agent's id for the connection, echoed in the gateway's audit record. */
  connectionId: 'egressd-connection-id',
} as const;

/** Response headers. */
export const TUNNEL_RESPONSE_HEADERS = {
  /** `allow` or `deny`. A denied `http` tunnel still opens: the gateway answers 404 inside it. */
  decision: 'egressd-decision',
  /** A policy DecisionReason or a gateway refusal reason. */
  reason: 'egressd-reason',
  /** `ServiceEntry/namespace/name` that matched, when one did. */
  rule: 'egressd-rule',
  /** The gateway replica's name, as in its audit records. */
  replica: 'egressd-replica',
} as const;

export type TunnelProtocol = 'tls' | 'http' | 'tcp';

const PROTOCOLS: ReadonlySet<string> = new Set<TunnelProtocol>(['tls', 'http', 'tcp']);

/** What the agent asks for. */
export interface TunnelRequest {
  /** The destination's name (from SNI, Host or DNS attribution), or the IP when nothing named it. */
  host: string;
  port: number;
  protocol: TunnelProtocol;
  /** The IP:port the application dialled. */
  originalDst?: string;
  sni?: string;
  httpHost?: string;
  connectionId?: string;
}

/** Statuses a gateway answers a CONNECT with. */
export const TUNNEL_STATUS = {
  ok: 200,
  /** Bad tunnel headers. */
  badRequest: 400,
  /** The policy (or the destination checks) refused the tunnel. */
  forbidden: 403,
  /** The destination could not be reached (refused, unresolvable, TLS failure). */
  badGateway: 502,
  /** The gateway has no valid configuration yet, or is stopping. */
  unavailable: 503,
  /** No destination address answered in time. */
  gatewayTimeout: 504,
} as const;

export function tunnelRequestHeaders(request: TunnelRequest): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {
    ':method': 'CONNECT',
    ':authority': formatHostPort(request.host, request.port),
    [TUNNEL_HEADERS.protocol]: request.protocol,
  };
  if (request.originalDst !== undefined) headers[TUNNEL_HEADERS.originalDst] = request.originalDst;
  if (request.sni !== undefined) headers[TUNNEL_HEADERS.sni] = request.sni;
  if (request.httpHost !== undefined) headers[TUNNEL_HEADERS.httpHost] = request.httpHost;
  if (request.connectionId !== undefined) headers[TUNNEL_HEADERS.connectionId] = request.connectionId;
  return headers;
}

export type ParsedTunnelRequest = { ok: true; request: TunnelRequest } | { ok: false; problem: string };

/** The gateway's side: reads a CONNECT stream's headers, saying what is wrong when they do not make a tunnel. */
export function parseTunnelRequest(headers: IncomingHttpHeaders): ParsedTunnelRequest {
  if (headers[':method'] !== 'CONNECT') return { ok: false, problem: `method ${String(headers[':method'])} is not CONNECT` };
  const authority = headers[':authority'];
  if (typeof authority !== 'string' || authority === '') return { ok: false, problem: 'no :authority' };
  const target = parseAuthority(authority);
  if (!target) return { ok: false, problem: `:authority "${authority}" is not host:port` };
  const protocol = single(headers[TUNNEL_HEADERS.protocol]);
  if (protocol === undefined || !PROTOCOLS.has(protocol)) {
    return { ok: false, problem: `${TUNNEL_HEADERS.protocol} "${protocol ?? ''}" is not tls, http or tcp` };
  }
  const request: TunnelRequest = { ...target, protocol: protocol as TunnelProtocol };
  const originalDst = single(headers[TUNNEL_HEADERS.originalDst]);
  if (originalDst !== undefined) request.originalDst = originalDst;
  const sni = single(headers[TUNNEL_HEADERS.sni]);
  if (sni !== undefined) request.sni = normalizeHost(sni);
  const httpHost = single(headers[TUNNEL_HEADERS.httpHost]);
  if (httpHost !== undefined) request.httpHost = httpHost;
  const connectionId = single(headers[TUNNEL_HEADERS.connectionId]);
  if (connectionId !== undefined) request.connectionId = connectionId;
  return { ok: true, request };
}

function parseAuthority(authority: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(authority);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  const raw = m[1] ?? m[2]!;
  if (m[1] !== undefined && isIP(raw) !== 6) return undefined;
  const host = normalizeHost(raw);
  return host === '' || host.startsWith('*.') ? undefined : { host, port };
}

function single(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return v === undefined || v === '' ? undefined : v;
}
