import type { AuditEntry, AuditHttp, AuditProtocol, AuditRecord, AuditSink, RefusalReason } from '../core/audit.ts';
import { formatHostPort } from '../core/net.ts';
import type { Decision, DecisionReason } from '../policy/decision.ts';
import type { TunnelRequest } from '../tunnel/protocol.ts';
import type { CallerIdentity } from './identity.ts';
import type { GatewayMetrics } from './metrics.ts';

/**
 * The gateway's audit record: the shared schema (src/core/audit.ts) plus who
 * called (the SPIFFE ID from the client certificate) and which replica
 * wrote it. One per TLS or TCP tunnel, one per request in an HTTP tunnel.
 */
export interface GatewayAuditEntry extends AuditEntry {
  /** The caller's SPIFFE ID, from its certificate. */
  identity: string | null;
  /** This gateway replica's name (`--replica`). */
  replica: string;
  /** The agent's id for the connection (`egressd-connection-id`), to join its record with ours. */
  connection_id: string | null;
  /** The x-request-id of an HTTP request. */
  request_id: string | null;
}

/** A record as read back: the sink adds `component: gateway`. */
export type GatewayAuditRecord = GatewayAuditEntry & Pick<AuditRecord, 'component'>;

/** Refusals the gateway adds to the policy's reasons and the shared ones. Documented in docs/gateway.md. */
export const GATEWAY_REFUSAL_REASONS = {
  forbidden_address: 'the destination resolves only to forbidden addresses (loopback, private, link-local, ...) that no rule lists',
  shutting_down: 'the gateway was stopping when the tunnel arrived',
} as const;

export type GatewayReason = DecisionReason | RefusalReason | keyof typeof GATEWAY_REFUSAL_REASONS;

export interface RecordContext {
  sink: AuditSink;
  metrics: GatewayMetrics;
  replica: string;
}

export class TunnelRecord {
  readonly #started = Date.now();
  readonly #fields: GatewayAuditEntry;
  readonly #context: RecordContext;
  #finished = false;

  constructor(context: RecordContext, identity: CallerIdentity, src: string | null, request?: TunnelRequest) {
    this.#context = context;
    this.#fields = {
      time: new Date(this.#started).toISOString(),
      decision: 'deny',
      reason: 'bad_request',
      rule: null,
      mode: null,
      would_deny: false,
      host: request?.host ?? null,
      host_source: request ? 'connect' : null,
      sni: request?.sni ?? null,
      alpn: null,
      port: request?.port ?? null,
      dst: null,
      src,
      protocol: request?.protocol ?? null,
      http: null,
      route: 'gateway',
      namespace: identity.namespace,
      listener: 'tunnel',
      bytes_sent: 0,
      bytes_received: 0,
      duration_ms: 0,
      error: null,
      identity: identity.spiffeId,
      replica: context.replica,
      connection_id: request?.connectionId ?? null,
      request_id: null,
    };
  }

  get decision(): 'allow' | 'deny' {
    return this.#fields.decision;
  }

  decided(decision: Decision): void {
    this.#fields.decision = decision.allow ? 'allow' : 'deny';
    this.#fields.reason = decision.reason;
    this.#fields.rule = decision.rule ?? null;
    this.#fields.mode = decision.mode;
    this.#fields.would_deny = decision.wouldDeny;
  }

  refused(reason: GatewayReason, detail: string): void {
    this.#fields.decision = 'deny';
    this.#fields.reason = reason;
    this.error(detail);
  }

  destination(address: string, port: number): void {
    this.#fields.dst = formatHostPort(address, port);
  }

  dialled(dst: string): void {
    this.#fields.dst = dst;
  }

  protocol(protocol: AuditProtocol): void {
    this.#fields.protocol = protocol;
  }

  http(fields: Partial<AuditHttp>, requestId?: string): void {
    this.#fields.http = { method: null, path: null, status: null, ...this.#fields.http, ...fields };
    if (requestId !== undefined) this.#fields.request_id = requestId;
  }

  addBytes(sent: number, received: number): void {
    this.#fields.bytes_sent += sent;
    this.#fields.bytes_received += received;
  }

  /** The first error is kept: it is the cause, later ones are its consequences. */
  error(message: string): void {
    this.#fields.error ??= message;
  }

  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    const f = this.#fields;
    f.duration_ms = Date.now() - this.#started;
    const { metrics, sink } = this.#context;
    metrics.tunnels.inc({ decision: f.decision, reason: f.reason, protocol: f.protocol ?? 'unknown' });
    metrics.bytes.inc({ direction: 'sent' }, f.bytes_sent);
    metrics.bytes.inc({ direction: 'received' }, f.bytes_received);
    sink.write({ ...f, http: f.http ? { ...f.http } : null });
  }
}
