import { isoTime } from '../core/iso-time.ts';
import type { AuditHttp, AuditProtocol, AuditRecord, AuditSink, RefusalReason } from '../core/audit.ts';
import { formatHostPort } from '../core/net.ts';
import type { Decision, DecisionReason } from '../policy/decision.ts';
import type { TunnelRequest } from '../tunnel/protocol.ts';
import type { CallerIdentity } from './identity.ts';
import type { GatewayMetrics } from './metrics.ts';

/**
 * The gateway's audit record, in the shared schema (src/core/audit.ts) with
 * its correlation fields filled: who called (the SPIFFE ID from the client
 * certificate), which replica wrote it, the agent's connection id and the
 * request id. One per TLS or TCP tunnel, one per request in an HTTP tunnel.
 */
type GatewayAuditEntry = Omit<AuditRecord, 'component'>;

export type GatewayReason = DecisionReason | RefusalReason;

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
      time: isoTime(this.#started),
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
      failover: null,
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
