import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { AuditSink } from '../core/audit.ts';
import type { Logger } from '../core/logger.ts';
import { ConnectionRecord, type ListenerName } from './connection-record.ts';
import type { ConnectionTracker } from './connection-tracker.ts';
import type { DnsNames } from './dns-names.ts';
import { decide, type DecideFacts, type Identity, type NamedHost, type PolicyView, type Verdict } from './decide.ts';
import { denialMessage } from './denial-message.ts';
import { auditPath } from '../core/http1-request-head.ts';
import { guardFor, relay, relayable } from './native-relay.ts';
import type { AgentMetrics } from './metrics.ts';
import { refuseHttp, refuseTcp, refuseTls, TLS_ALERT } from './refuse.ts';
import type { Resolver } from './resolve.ts';
import type { Endpoint } from './connect-to.ts';
import type { Destination } from './outbound.ts';
import type { GatewayRefusal, Route, RouteResult, RouteTarget } from './route.ts';
import type { Sniffed } from './sniff.ts';
import { splice, type SpliceResult } from './splice.ts';
import type { UpstreamSocket } from './tunnel-socket.ts';
import { planUpstream } from './upstream-plan.ts';
import { verifyDestination } from './verify-destination.ts';

/**
 * What every connection handler shares: the stages (decide, route, audit)
 * and what they need. Both listeners run a connection through the same
 * steps: accept -> destination -> sniff -> decide -> route -> splice, with
 * the audit record written when it is all over. The pieces that both use
 * live here; each listener file reads as its own sequence of stages.
 */
export interface Pipeline {
  /** The policy in force now (it changes on reload); undefined until a config has loaded. */
  policy(): PolicyView | undefined;
  identity: Identity;
  route: Route;
  resolve: Resolver;
  /** The DNS proxy's knowledge of addresses it answered with (VIPs, attribution); absent without one. */
  dns?: DnsNames;
  /** Ports of the agent's own listeners, for loop detection. */
  ownPorts(): ReadonlySet<number>;
  sink: AuditSink;
  metrics: AgentMetrics;
  logger: Logger;
  tracker: ConnectionTracker;
  /** Shown in denial messages (`egressctl check --config <dir>`). */
  configDir: string;
  peekTimeoutMs: number;
  sniffTimeoutMs: number;
  idleTimeoutMs: number;
  /** Warnings already logged, each once per process (keys). */
  warned: Set<string>;
}

/** Opens the record for a new client connection and keeps the connection tracked until the record is written. */
export function openRecord(pipeline: Pipeline, listener: ListenerName, socket: Socket): ConnectionRecord {
  const record = new ConnectionRecord(listener, { address: socket.remoteAddress, port: socket.remotePort }, pipeline.identity, pipeline.sink, pipeline.metrics);
  pipeline.tracker.track(socket, record.written);
  // Sockets must always have an error listener: an unhandled one would stop the agent.
  socket.on('error', (err: NodeJS.ErrnoException) => record.error(`client: ${err.code ?? err.message}`));
  return record;
}

export function whenClosed(socket: Duplex): Promise<void> {
  return socket.closed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));
}

/** Names for the destination found in the sniffed bytes. */
export function sniffedNames(s: Sniffed): NamedHost[] {
  if (s.kind === 'tls') return s.sni === null ? [] : [{ source: 'sni', name: s.sni }];
  if (s.kind !== 'http') return [];
  const names: NamedHost[] = [];
  if (s.targetHost !== null) names.push({ source: 'http', name: s.targetHost });
  if (s.host !== null) names.push({ source: 'http', name: s.host });
  return names;
}

export function sniffedProtocol(s: Sniffed): DecideFacts['protocol'] {
  return s.kind === 'tls' ? 'TLS' : s.kind === 'http' ? 'HTTP' : 'TCP';
}

/** Runs the decide stage on the facts and the sniffed bytes, and records the outcome. */
export function decideSniffed(pipeline: Pipeline, record: ConnectionRecord, s: Sniffed, facts: DecideFacts): Verdict {
  record.sniffed(s);
  if (s.kind === 'http') record.http({ method: s.method, path: auditPath(s.target) });
  const named = facts.names[0];
  const verdict: Verdict =
    s.kind === 'malformed_tls'
      ? { allow: false, reason: 'malformed_client_hello', host: named?.name ?? facts.address ?? '', hostSource: named?.source ?? 'ip', detail: s.reason }
      : decide(pipeline.policy(), { ...facts, names: [...facts.names, ...sniffedNames(s)], protocol: sniffedProtocol(s) }, pipeline.identity);
  record.verdict(verdict, facts.port);
  return verdict;
}

/** Refuses in the protocol the client spoke, then waits for the socket to close. */
export async function refuseSniffed(pipeline: Pipeline, record: ConnectionRecord, socket: Socket, s: Sniffed, verdict: Verdict, port: number): Promise<void> {
  if (s.kind === 'aborted') {
    record.error(s.error);
  } else if (s.kind === 'http') {
    const body = denialMessage({ host: verdict.host, port, reason: verdict.reason, ...detail(verdict), namespace: pipeline.identity.namespace, configDir: pipeline.configDir });
    record.http({ status: refuseHttp(socket, 403, verdict.reason, body) });
  } else if (s.kind === 'tls' || s.kind === 'malformed_tls') {
    refuseTls(socket, s.kind === 'tls' ? TLS_ALERT.accessDenied : TLS_ALERT.decodeError);
  } else {
    refuseTcp(socket);
  }
  await whenClosed(socket);
}

/**
 * The plan and verify stages: where an allowed connection goes (by the
 * matched rule's resolution), and the verdict after checking a passthrough
 * destination: refused as `destination_mismatch`, or in mode REPORT let
 * through and marked would_deny. A changed verdict is recorded here.
 */
export async function planRoute(pipeline: Pipeline, record: ConnectionRecord, verdict: Verdict, requested: Endpoint, dialled?: Destination): Promise<{ verdict: Verdict; target: RouteTarget }> {
  const plan = planUpstream(verdict, requested, dialled);
  const target: RouteTarget = {
    host: requested.host,
    port: requested.port,
    endpoints: plan.endpoints,
    connectionId: record.connectionId,
    ...(dialled ? { originalDst: { host: dialled.address, port: dialled.port } } : {}),
  };
  const tls = verdict.decision?.tls;
  if (tls !== undefined && pipeline.route.name === 'direct' && !pipeline.warned.has('origination')) {
    pipeline.warned.add('origination');
    pipeline.logger.warn(
      { host: requested.host, port: requested.port, rule: tls.source },
      'TLS origination needs the egress gateway (--egress-gateway); the direct route sends the client\'s bytes as they are (logged once)',
    );
  }
  const why = plan.verify === undefined ? undefined : await verifyDestination(plan.verify, requested.port, pipeline.resolve);
  if (why === undefined || verdict.decision === undefined) return { verdict, target };
  const report = verdict.decision.mode === 'REPORT';
  const checked: Verdict = { ...verdict, allow: report, reason: 'destination_mismatch', decision: { ...verdict.decision, wouldDeny: report }, detail: why };
  record.verdict(checked, requested.port);
  return { verdict: checked, target };
}

/** Route and splice: connects upstream, replays the sniffed bytes and copies both ways until both sides close. */
export async function forward(pipeline: Pipeline, record: ConnectionRecord, socket: Socket, s: Sniffed, target: RouteTarget): Promise<void> {
  if (s.kind === 'aborted') {
    record.error(s.error);
    return;
  }
  const result = await routeTo(pipeline, record, { ...target, ...wireFacts(s) });
  if (!result.ok) {
    if (s.kind === 'http') {
      const [status, reason] = refusalStatus(result);
      record.http({ status: refuseHttp(socket, status, reason, `egressd: ${result.detail}\n`) });
    } else if (s.kind === 'tls' && result.reason === 'gateway_refused') {
      refuseTls(socket, TLS_ALERT.accessDenied);
    } else {
      refuseTcp(socket);
    }
    await whenClosed(socket);
    return;
  }
  await connected(pipeline, record, socket, result.socket, s);
}

/** The HTTP answer to a route failure: a loop or a gateway refusal is refused (403, or 503 when the gateway is not ready), an unreachable destination is a 502. */
export function refusalStatus(result: Exclude<RouteResult, { ok: true }>): [403 | 502 | 503, string] {
  if (result.reason === 'gateway_refused') return [result.refusal.status === 503 ? 503 : 403, result.refusal.reason];
  return [result.reason === 'loop' ? 403 : 502, result.reason];
}

/** What the gateway route tells the gateway about the client's bytes. */
function wireFacts(s: Sniffed): Pick<RouteTarget, 'protocol' | 'sni' | 'httpHost'> {
  if (s.kind === 'tls') return { protocol: 'tls', ...(s.sni === null ? {} : { sni: s.sni }) };
  if (s.kind === 'http') return { protocol: 'http', ...(s.host === null ? {} : { httpHost: s.host }) };
  return { protocol: 'tcp' };
}

/** The route stage with its audit: where it connected (or last tried) and through which replica, a loop or a gateway refusal as a refusal. */
export async function routeTo(pipeline: Pipeline, record: ConnectionRecord, target: RouteTarget): Promise<RouteResult> {
  record.route(pipeline.route.name);
  const result = await pipeline.route.connect(target);
  if (result.replica !== undefined) record.replica(result.replica);
  if (result.failovers !== undefined) record.failovers(result.failovers);
  if (result.ok) {
    if (result.dst) record.destination(result.dst.host, result.dst.port);
    if (result.denied) record.refusedByGateway(result.denied, deniedDetail(result.denied, result.replica));
    return result;
  }
  if (result.reason === 'gateway_refused') {
    record.refusedByGateway(result.refusal, result.detail);
    return result;
  }
  if (result.dst) record.destination(result.dst.host, result.dst.port);
  if (result.reason === 'loop') record.refused('loop', result.detail);
  else record.error(result.detail);
  return result;
}

function deniedDetail(denied: GatewayRefusal, replica: string | undefined): string {
  return `the egress gateway${replica === undefined ? '' : ` ${replica}`} denied it (${denied.reason}) and answers the requests itself`;
}

/**
 * Splices an already connected upstream, recording bytes, errors and the HTTP status if one is seen.
 * A direct upstream is relayed by the native thread, a gateway tunnel (an HTTP/2 stream) by the event loop.
 */
export async function connected(pipeline: Pipeline, record: ConnectionRecord, socket: Socket, upstream: UpstreamSocket, s: Sniffed): Promise<void> {
  const onFirstResponseBytes = s.kind === 'http' ? { onFirstResponseBytes: (chunk: Buffer) => recordStatus(record, chunk) } : {};
  let result: SpliceResult;
  if (pipeline.route.name === 'direct' && relayable(socket, upstream)) {
    // Through the gateway, the gateway reads every request itself (and answers a stray Host with a 404); here the guard does.
    const guard = s.kind === 'http' && record.enforcing() ? { guard: guardFor(s.host ?? s.targetHost) } : {};
    result = await relay(socket, upstream, { replay: s.buffered, idleTimeoutMs: pipeline.idleTimeoutMs, ...onFirstResponseBytes, ...guard });
  } else {
    result = await splice(socket, upstream, { replay: s.buffered, clientEnded: s.ended, idleTimeoutMs: pipeline.idleTimeoutMs, ...onFirstResponseBytes });
  }
  record.bytes(result.bytesSent, result.bytesReceived);
  if (result.refused !== undefined) record.refused('host_mismatch', `${result.refused}: the connection was reset`);
  if (result.error !== undefined) record.error(result.error);
}

function recordStatus(record: ConnectionRecord, chunk: Buffer): void {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(chunk.subarray(0, 16).toString('latin1'));
  if (m) record.http({ status: Number(m[1]) });
}

function detail(verdict: Verdict): { detail?: string } {
  return verdict.detail === undefined ? {} : { detail: verdict.detail };
}
