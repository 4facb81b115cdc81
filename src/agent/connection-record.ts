import { isoTime } from '../core/iso-time.ts';
import { randomUUID } from 'node:crypto';
import type { AuditEntry, AuditHttp, AuditProtocol, AuditRecord, AuditRoute, AuditSink } from '../core/audit.ts';
import { formatHostPort } from '../core/net.ts';
import type { Identity, Verdict } from './decide.ts';
import type { GatewayRefusal } from './route.ts';
import type { AgentMetrics } from './metrics.ts';
import type { Sniffed } from './sniff.ts';

export type ListenerName = 'outbound' | 'proxy';

/**
 * The audit stage: what one connection did, filled in by the stages as they
 * learn it, written exactly once when the connection is over (finish() is
 * idempotent), and counted in the metrics at the same moment.
 */
export class ConnectionRecord {
  private readonly started = Date.now();
  private readonly fields: Required<AuditEntry>;
  /** Sent to the gateway with the tunnel, so that its record of the connection carries it too. */
  readonly connectionId = randomUUID();
  private finished = false;
  private markWritten!: () => void;
  /** Settles once the record is written. */
  readonly written = new Promise<void>((resolve) => (this.markWritten = resolve));

  constructor(
    readonly listener: ListenerName,
    src: { address?: string; port?: number },
    identity: Pick<Identity, 'namespace' | 'spiffeId'>,
    private readonly sink: AuditSink,
    private readonly metrics: AgentMetrics,
  ) {
    metrics.active.inc({ listener });
    this.fields = {
      time: isoTime(this.started),
      decision: 'deny',
      reason: 'bad_request',
      rule: null,
      mode: null,
      would_deny: false,
      host: null,
      host_source: null,
      sni: null,
      alpn: null,
      port: null,
      dst: null,
      src: src.address !== undefined && src.port !== undefined ? formatHostPort(unmapped(src.address), src.port) : null,
      protocol: null,
      http: null,
      route: null,
      namespace: identity.namespace,
      listener,
      bytes_sent: 0,
      bytes_received: 0,
      duration_ms: 0,
      error: null,
      identity: identity.spiffeId ?? null,
      replica: null,
      failover: null,
      connection_id: this.connectionId,
      request_id: null,
    };
  }

  /** Where the connection goes: the original destination, then what the route dialled. `port` stays the one decided on. */
  destination(address: string, port: number): void {
    this.fields.dst = formatHostPort(unmapped(address), port);
    this.fields.port ??= port;
  }

  sniffed(s: Sniffed): void {
    if (s.kind === 'tls') {
      this.fields.protocol = 'tls';
      this.fields.sni = s.sni;
      this.fields.alpn = s.alpn;
    } else if (s.kind === 'http') {
      this.fields.protocol = 'http';
    } else if (s.kind === 'malformed_tls') {
      this.fields.protocol = 'tls';
      this.metrics.malformedClientHellos.inc({ listener: this.listener });
    } else {
      this.fields.protocol = 'tcp';
    }
  }

  protocol(protocol: AuditProtocol): void {
    this.fields.protocol = protocol;
  }

  http(fields: Partial<AuditHttp>): void {
    this.fields.http = { method: null, path: null, status: null, ...this.fields.http, ...fields };
  }

  verdict(v: Verdict, port: number): void {
    this.fields.decision = v.allow ? 'allow' : 'deny';
    this.fields.reason = v.reason;
    this.fields.host = v.host === '' ? null : v.host;
    this.fields.host_source = v.hostSource;
    this.fields.port = port;
    this.fields.rule = v.decision?.rule ?? null;
    this.fields.mode = v.decision?.mode ?? this.fields.mode;
    this.fields.would_deny = v.decision?.wouldDeny ?? false;
    if (v.detail !== undefined) this.error(v.detail);
  }

  /** Refused before any verdict could be reached (no original destination, loop, shutdown). */
  refused(reason: AuditRecord['reason'], detail: string): void {
    this.fields.decision = 'deny';
    this.fields.reason = reason;
    this.error(detail);
  }

  /** The decision was made in REGISTRY_ONLY mode: refusals are real, not only reported. */
  enforcing(): boolean {
    return this.fields.mode === 'REGISTRY_ONLY';
  }

  route(route: AuditRoute): void {
    this.fields.route = route;
  }

  /** The egress gateway replica that carried or refused the connection. */
  replica(name: string): void {
    this.fields.replica = name;
  }

  /** Replicas tried first that could not take the connection. */
  failovers(tried: string[]): void {
    this.fields.failover = tried;
  }

  /** The gateway's decision overrides ours: it knows the caller from its certificate and decides again. */
  refusedByGateway(refusal: GatewayRefusal, detail: string): void {
    this.refused(refusal.reason, detail);
    this.fields.rule = refusal.rule;
  }

  bytes(sent: number, received: number): void {
    this.fields.bytes_sent = sent;
    this.fields.bytes_received = received;
  }

  /** The first error is kept: it is the cause, later ones are consequences. */
  error(message: string): void {
    this.fields.error ??= message;
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.fields.duration_ms = Date.now() - this.started;
    const { listener } = this;
    this.metrics.active.dec({ listener });
    this.metrics.connections.inc({ listener, decision: this.fields.decision, reason: this.fields.reason });
    this.metrics.bytesSent.inc({ listener }, this.fields.bytes_sent);
    this.metrics.bytesReceived.inc({ listener }, this.fields.bytes_received);
    this.sink.write({ ...this.fields });
    this.markWritten();
  }
}

/** `::ffff:127.0.0.1` (an IPv4 client on a dual-stack socket) reads as `127.0.0.1`. */
export function unmapped(address: string): string {
  return address.toLowerCase().startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
