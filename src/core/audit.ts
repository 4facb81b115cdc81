import { mkdirSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import pino, { type DestinationStream } from 'pino';
import { EgressdError } from './errors.ts';

/**
 * The audit record: exactly one per proxied connection, written when the
 * connection closes, whatever happened to it (allowed, refused, failed).
 * Shared by the agent and the gateway; the schema is documented in
 * docs/audit-log.md. Every field is always present, `null` when unknown,
 * so that consumers can rely on the keys.
 */

export type AuditDecision = 'allow' | 'deny';

/**
 * Where the host that was decided on came from. `dns`: the DNS proxy's
 * question (on its own records), or the name a DNS answer gave for the
 * destination address (on a connection that carried no name).
 */
export type HostSource = 'sni' | 'http' | 'connect' | 'ip' | 'dns';

/** `dns`: a record the DNS proxy wrote about a query, not a connection. */
export type AuditProtocol = 'tls' | 'http' | 'tcp' | 'dns';

export type AuditRoute = 'direct' | 'gateway';

/**
 * Reasons decided before or beside the policy (the policy's own reasons are
 * in src/policy/decision.ts). Each is documented in docs/audit-log.md.
 */
export const REFUSAL_REASONS = {
  malformed_client_hello: 'the bytes start a TLS handshake but are not a valid ClientHello',
  bad_request: 'the explicit proxy got no request, or one it cannot serve',
  host_mismatch: 'two names for the destination disagree (SNI, Host header, CONNECT or URI host)',
  invalid_host: 'a name for the destination is not a valid host name',
  loop: 'the destination is one of the agent\'s own listeners',
  no_original_destination: 'the original destination of a redirected connection could not be read',
  config_not_loaded: 'no valid configuration has been loaded yet (fail closed)',
  destination_mismatch: 'the IP the client dialled is not an address of the name that was allowed (nor in the rule\'s addresses)',
  forbidden_address: 'the destination resolves only to forbidden addresses (loopback, private, link-local, ...) that no rule lists (the gateway)',
  shutting_down: 'the gateway was stopping when the tunnel arrived',
} as const;

export type RefusalReason = keyof typeof REFUSAL_REASONS;

export interface AuditHttp {
  method: string | null;
  path: string | null;
  status: number | null;
}

export interface AuditRecord {
  /** When the connection was accepted (ISO 8601). */
  time: string;
  decision: AuditDecision;
  /** A policy DecisionReason or a RefusalReason. */
  reason: string;
  /** `ServiceEntry/namespace/name` that matched. */
  rule: string | null;
  /** The policy mode (REGISTRY_ONLY, ALLOW_ANY, REPORT) in force. */
  mode: string | null;
  would_deny: boolean;
  /** The host the decision was made on (normalized name, or the IP). */
  host: string | null;
  host_source: HostSource | null;
  sni: string | null;
  alpn: string[] | null;
  port: number | null;
  /** Destination ip:port (the original destination, or what a name resolved to). */
  dst: string | null;
  /** The client's ip:port. */
  src: string | null;
  protocol: AuditProtocol | null;
  http: AuditHttp | null;
  route: AuditRoute | null;
  namespace: string | null;
  /** Which component wrote the record: `agent` or `gateway`. */
  component: string;
  /** The listener that accepted the connection (`outbound`, `proxy`, ...). */
  listener: string;
  /** Bytes written to the destination (client to server). */
  bytes_sent: number;
  /** Bytes read from the destination (server to client). */
  bytes_received: number;
  duration_ms: number;
  /** What went wrong, if anything (also set on allowed connections that failed). */
  error: string | null;
  /** The workload's SPIFFE ID: the agent's own certificate, or the caller's certificate at the gateway. */
  identity: string | null;
  /** The egress gateway replica: the gateway's own name (`--replica`), or the one that carried or refused the agent's connection. */
  replica: string | null;
  /** Gateway replicas that could not take the connection before `replica` did, each as `address: why`; null when the first one did. */
  failover: string[] | null;
  /** The agent's id for the connection, sent to the gateway (`egressd-connection-id`): joins the two records. */
  connection_id: string | null;
  /** The `x-request-id` of an HTTP request the gateway sent on. */
  request_id: string | null;
}

/** Field names of the audit record, for consumers that look fields up by name. */
export const AUDIT_FIELDS = {
  time: 'time',
  decision: 'decision',
  reason: 'reason',
  rule: 'rule',
  mode: 'mode',
  wouldDeny: 'would_deny',
  host: 'host',
  hostSource: 'host_source',
  sni: 'sni',
  alpn: 'alpn',
  port: 'port',
  dst: 'dst',
  src: 'src',
  protocol: 'protocol',
  http: 'http',
  route: 'route',
  namespace: 'namespace',
  component: 'component',
  listener: 'listener',
  bytesSent: 'bytes_sent',
  bytesReceived: 'bytes_received',
  durationMs: 'duration_ms',
  error: 'error',
  identity: 'identity',
  replica: 'replica',
  failover: 'failover',
  connectionId: 'connection_id',
  requestId: 'request_id',
} as const satisfies Record<string, keyof AuditRecord>;

/** Fields that join an agent's record with the gateway's (and failover, the agent's alone); a writer that knows none of them leaves them out. */
type CorrelationField = 'identity' | 'replica' | 'failover' | 'connection_id' | 'request_id';

/** What a component hands the sink; the sink adds `component`, and `null` for correlation fields left out. */
export type AuditEntry = Omit<AuditRecord, 'component' | CorrelationField> & Partial<Pick<AuditRecord, CorrelationField>>;

export interface AuditSink {
  write(record: AuditEntry): void;
  /** Flushes every pending record and closes the files (never stdout itself). */
  close(): Promise<void>;
}

export interface AuditSinkOptions {
  /** `agent` or `gateway`: the first field of every record. */
  component: string;
  /** Write records to stdout (default true). */
  stdout?: boolean;
  /** Also append records to this file (created if missing). */
  file?: string;
  /** Extra destination, e.g. an in-memory stream in tests or a log shipper. */
  destination?: DestinationStream;
  /** Called when a write to stdout or the file fails later on (disk full, closed pipe). */
  onError?: (err: Error) => void;
}

/** The longest a record waits in memory before it is written. */
export const AUDIT_FLUSH_MS = 50;
/** Pending bytes that are written at once, without waiting. */
const AUDIT_BATCH_BYTES = 16 * 1024;

/**
 * JSON lines: `component`, then the entry; no level, pid or hostname; `time`
 * is the connection's start, set by the caller. Serialized here with
 * JSON.stringify and handed to pino's SonicBoom destinations as finished
 * lines: going through a pino logger and its multistream cost twice the CPU
 * per record, which the gateway pays on every HTTP request.
 * Destinations are asynchronous (the hot path never blocks on a write) and
 * written in batches: a record waits at most AUDIT_FLUSH_MS, or until
 * AUDIT_BATCH_BYTES are pending, so that a gateway audited per request does
 * one write (a thread-pool job, a wake-up of whoever reads the pipe) per
 * batch rather than per record, as Envoy flushes its access logs. close(),
 * which shutdown awaits, and the process's exit write what is pending; a
 * SIGKILL loses at most the last AUDIT_FLUSH_MS of records.
 */
export function createAuditSink(options: AuditSinkOptions): AuditSink {
  const booms: ReturnType<typeof pino.destination>[] = [];
  if (options.stdout ?? true) booms.push(pino.destination({ dest: 1, sync: false }));
  if (options.file !== undefined) booms.push(pino.destination({ dest: openAuditFile(options.file), sync: false }));
  for (const boom of booms) boom.on('error', (err: Error) => options.onError?.(err));
  let closed = false;
  let pending = '';
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    clearTimeout(timer);
    timer = undefined;
    if (pending === '') return;
    for (const boom of booms) boom.write(pending);
    pending = '';
  };
  const flushAtExit = (): void => {
    flush();
    for (const boom of booms) {
      try {
        boom.flushSync();
      } catch {
        // Exiting: a destination that cannot take it now is not helped by an exception.
      }
    }
  };
  if (booms.length > 0) process.on('exit', flushAtExit);
  return {
    write(record) {
      if (closed) return;
      const line = `${JSON.stringify({
        [AUDIT_FIELDS.component]: options.component,
        ...record,
        identity: record.identity ?? null,
        replica: record.replica ?? null,
        failover: record.failover ?? null,
        connection_id: record.connection_id ?? null,
        request_id: record.request_id ?? null,
      })}\n`;
      options.destination?.write(line);
      if (booms.length === 0) return;
      pending += line;
      if (pending.length >= AUDIT_BATCH_BYTES) flush();
      else timer ??= setTimeout(flush, AUDIT_FLUSH_MS).unref();
    },
    async close() {
      if (closed) return;
      closed = true;
      flush();
      process.off('exit', flushAtExit);
      await Promise.all(
        booms.map(
          (boom) =>
            new Promise<void>((resolve) => {
              boom.once('close', () => resolve());
              boom.once('error', () => resolve());
              boom.end();
            }),
        ),
      );
    },
  };
}

/**
 * Every complete line of an audit log file (`--audit-log`), parsed: none when
 * the file does not exist yet. The last line is left out when it has no
 * newline (still being written); a line that is not JSON throws.
 */
export async function readAuditFile(file: string): Promise<AuditRecord[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const lines = text.split('\n');
  lines.pop(); // empty after the last newline, or a line still being written
  return lines.map((line) => JSON.parse(line) as AuditRecord);
}

/** Opened here, synchronously, so that a bad path fails at start with a clear error, not later in the background. */
function openAuditFile(file: string): number {
  try {
    mkdirSync(dirname(file), { recursive: true });
    return openSync(file, 'a');
  } catch (err) {
    throw new EgressdError('EGRESSD_ERR_AUDIT_LOG', `cannot open audit log ${file}: ${(err as Error).message}`, { cause: err, context: { file } });
  }
}
