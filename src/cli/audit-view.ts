import type { AuditRecord } from '../core/audit.ts';

/**
 * Audit records as people read them, one line each: the decision first, then
 * where to, why, how, and how much. The JSON record stays the source of truth;
 * this is only a view of it (the demo's, and `egressctl logs` later).
 */

const COLUMNS = ['DECISION', 'DESTINATION', 'PROTOCOL', 'REASON', 'RULE', 'ROUTE', 'BYTES OUT/IN', 'MS'] as const;
/** With `wide`: who wrote the record first, which gateway replica and which workload identity last. */
const WIDE_COLUMNS = ['COMPONENT', ...COLUMNS, 'REPLICA', 'IDENTITY'] as const;

function bytes(n: number): string {
  if (n < 1024) return `${n}B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)}KiB`;
  return `${(n / 1024 / 1024).toFixed(1)}MiB`;
}

function row(r: AuditRecord): string[] {
  const decision = r.decision === 'allow' ? (r.would_deny ? 'ALLOW*' : 'ALLOW') : 'DENY';
  const destination = `${r.host ?? '?'}:${r.port ?? '?'}`;
  const http = r.http?.method ? ` ${r.http.method} ${r.http.path ?? ''}${r.http.status ? ` ${r.http.status}` : ''}` : '';
  return [
    decision,
    destination,
    `${r.protocol ?? '?'}${r.host_source ? `(${r.host_source})` : ''}${http}`,
    r.error ? `${r.reason}: ${r.error}` : r.reason,
    r.rule ?? '-',
    r.route ?? '-',
    `${bytes(r.bytes_sent)}/${bytes(r.bytes_received)}`,
    String(Math.round(r.duration_ms)),
  ];
}

function wideRow(r: AuditRecord): string[] {
  return [r.component, ...row(r), r.replica ?? '-', r.identity ?? '-'];
}

/**
 * A table of records with a header; `ALLOW*` marks what report mode let through but
 * REGISTRY_ONLY would deny. `wide` adds the component, gateway replica and identity,
 * to read an agent's records beside the gateway's.
 */
export function formatAuditTable(records: readonly AuditRecord[], options: { wide?: boolean } = {}): string {
  const header: readonly string[] = options.wide ? WIDE_COLUMNS : COLUMNS;
  const rows = [[...header], ...records.map(options.wide ? wideRow : row)];
  const widths = header.map((_, i) => Math.max(...rows.map((cells) => cells[i]!.length)));
  return rows.map((cells) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}
