import { constants as h2, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Logger } from '../core/logger.ts';
import type { Cidr } from '../core/ip-ranges.ts';
import { errorMessage, EgressdError } from '../core/errors.ts';
import { parseTunnelRequest, TUNNEL_RESPONSE_HEADERS, TUNNEL_STATUS, type TunnelRequest } from '../tunnel/protocol.ts';
import { checkClientHello } from './client-hello-check.ts';
import { authorize, type Authorization, type PolicySnapshot } from './authorize.ts';
import { dialFirst, planDial, type Resolver } from './destination.ts';
import type { CallerIdentity } from './identity.ts';
import type { GatewayMetrics } from './metrics.ts';
import { spliceTunnel } from './splice.ts';
import { TunnelRecord, type GatewayReason, type RecordContext } from './tunnel-record.ts';

/**
 * One CONNECT stream, in stages: parse the tunnel headers, decide with the
 * caller's identity, then either hand an HTTP tunnel to the HTTP proxy
 * (which answers inside it) or, for TLS and TCP, plan the destination
 * addresses, dial, answer 200 and splice. Every outcome is an audit record.
 */

export interface TunnelContext {
  snapshot: () => PolicySnapshot | undefined;
  stopping: () => boolean;
  resolver: Resolver;
  /** CIDRs opened for every destination by flag (labs), next to the rules' own. */
  extraListed: readonly Cidr[];
  connectTimeoutMs: number;
  /** How long a tls tunnel may take to deliver its ClientHello. */
  sniffTimeoutMs: number;
  idleTimeoutMs: number;
  records: RecordContext;
  metrics: GatewayMetrics;
  logger: Logger;
  /** Serves an HTTP tunnel (already answered 200): parses requests, originates or forwards them. */
  serveHttp: (stream: ServerHttp2Stream, tunnel: HttpTunnel) => void;
}

/** What the HTTP proxy needs to know about the tunnel it serves. */
export interface HttpTunnel {
  request: TunnelRequest;
  identity: CallerIdentity;
  src: string | null;
  authorization: Authorization;
}

export function handleTunnel(ctx: TunnelContext, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, identity: CallerIdentity, src: string | null): void {
  // Stream errors are reported through the record; without a listener they would crash the process.
  stream.on('error', (err) => ctx.logger.debug({ err }, 'tunnel stream error'));
  const parsed = parseTunnelRequest(headers);
  if (!parsed.ok) {
    const record = new TunnelRecord(ctx.records, identity, src);
    record.refused('bad_request', parsed.problem);
    answer(stream, TUNNEL_STATUS.badRequest, { decision: 'deny', reason: 'bad_request' }, ctx.records.replica);
    record.finish();
    return;
  }
  const request = parsed.request;
  const record = new TunnelRecord(ctx.records, identity, src, request);
  const snapshot = ctx.snapshot();
  if (ctx.stopping() || !snapshot) {
    const reason: GatewayReason = snapshot ? 'shutting_down' : 'config_not_loaded';
    record.refused(reason, snapshot ? 'the gateway is stopping' : 'no valid configuration loaded yet');
    answer(stream, TUNNEL_STATUS.unavailable, { decision: 'deny', reason }, ctx.records.replica);
    record.finish();
    return;
  }
  const authorization = authorize(snapshot, request, identity, ctx.extraListed);
  const { decision } = authorization;
  record.decided(decision);
  const verdict = { decision: decision.allow ? 'allow' : 'deny', reason: decision.reason, rule: decision.rule } as const;
  if (request.protocol === 'http') {
    // HTTP gets HTTP answers: the tunnel opens even when denied, and each request in it gets a 404, as from Istio's blackhole.
    answer(stream, TUNNEL_STATUS.ok, verdict, ctx.records.replica);
    ctx.serveHttp(stream, { request, identity, src, authorization });
    return;
  }
  if (!decision.allow) {
    answer(stream, TUNNEL_STATUS.forbidden, verdict, ctx.records.replica);
    record.finish();
    return;
  }
  if (request.protocol === 'tls' && request.sni !== undefined && request.sni !== request.host) {
    record.refused('host_mismatch', `SNI ${request.sni} is not the tunnel's host ${request.host}`);
    answer(stream, TUNNEL_STATUS.forbidden, { decision: 'deny', reason: 'host_mismatch' }, ctx.records.replica);
    record.finish();
    return;
  }
  void passthrough(ctx, stream, request, authorization, record, verdict);
}

async function passthrough(
  ctx: TunnelContext,
  stream: ServerHttp2Stream,
  request: TunnelRequest,
  authorization: Authorization,
  record: TunnelRecord,
  verdict: Verdict,
): Promise<void> {
  const { decision } = authorization;
  const protocol = request.protocol;
  ctx.metrics.activeTunnels.inc({ protocol });
  try {
    const plan = await planDial(request.host, decision.upstream?.port ?? request.port, decision.upstream, authorization.listed, ctx.resolver);
    if (!plan.ok) {
      if (plan.reason === 'forbidden_address') {
        record.refused('forbidden_address', plan.detail);
        answer(stream, TUNNEL_STATUS.forbidden, { decision: 'deny', reason: 'forbidden_address', rule: decision.rule }, ctx.records.replica);
      } else {
        record.error(plan.detail);
        answer(stream, TUNNEL_STATUS.badGateway, verdict, ctx.records.replica);
      }
      return;
    }
    let dialled;
    try {
      dialled = await dialFirst(plan.targets, ctx.connectTimeoutMs);
    } catch (err) {
      record.error(errorMessage(err));
      const timedOut = err instanceof EgressdError && err.context.timedOut === true;
      answer(stream, timedOut ? TUNNEL_STATUS.gatewayTimeout : TUNNEL_STATUS.badGateway, verdict, ctx.records.replica);
      return;
    }
    record.dialled(dialled.dst);
    if (stream.destroyed || stream.closed) {
      dialled.socket.destroy();
      record.error('the agent cancelled the tunnel before it opened');
      return;
    }
    answer(stream, TUNNEL_STATUS.ok, verdict, ctx.records.replica);
    let replay: Buffer | undefined;
    if (protocol === 'tls') {
      const hello = await checkClientHello(stream, request.host, ctx.sniffTimeoutMs);
      if (!hello.ok) {
        if (hello.reason === 'cancelled') record.error(hello.detail);
        else record.refused(hello.reason, hello.detail);
        dialled.socket.destroy();
        if (!stream.destroyed) stream.close(h2.NGHTTP2_CONNECT_ERROR);
        return;
      }
      replay = hello.buffered;
    }
    const result = await spliceTunnel(stream, dialled.socket, { idleTimeoutMs: ctx.idleTimeoutMs, ...(replay ? { replay } : {}) });
    record.addBytes(result.bytesSent, result.bytesReceived);
    if (result.error !== undefined) record.error(result.error);
  } catch (err) {
    record.error(errorMessage(err));
    if (!stream.destroyed) stream.close();
  } finally {
    ctx.metrics.activeTunnels.dec({ protocol });
    record.finish();
  }
}

type Verdict = { decision: 'allow' | 'deny'; reason: string; rule?: string | undefined };

function answer(stream: ServerHttp2Stream, status: number, verdict: Verdict, replica: string): void {
  if (stream.destroyed || stream.headersSent) return;
  const headers: OutgoingHttpHeaders = {
    ':status': status,
    [TUNNEL_RESPONSE_HEADERS.decision]: verdict.decision,
    [TUNNEL_RESPONSE_HEADERS.reason]: verdict.reason,
    [TUNNEL_RESPONSE_HEADERS.replica]: replica,
  };
  if (verdict.rule !== undefined) headers[TUNNEL_RESPONSE_HEADERS.rule] = verdict.rule;
  stream.respond(headers, { endStream: status !== TUNNEL_STATUS.ok });
}
