import { isoTime } from '../core/iso-time.ts';
import type { AuditEntry, RefusalReason } from '../core/audit.ts';
import type { Decision } from '../policy/index.ts';
import { formatHostPort } from '../core/net.ts';

/**
 * The audit record of a DNS query, written when a name is refused
 * (REGISTRY_ONLY), would have been (REPORT: allowed, `would_deny`), or
 * could not be judged (no allowlist loaded). Same schema as a connection's:
 * `protocol: dns`, `listener: dns`, `host_source: dns`, the asked name as
 * `host`; no port or destination (a query has none), no bytes.
 */

export interface DnsAuditFacts {
  /** When the query arrived (epoch ms). */
  startedAt: number;
  finishedAt: number;
  name: string;
  client: { address: string; port: number };
  namespace: string;
  allow: boolean;
  /** The policy's decision; absent when there was none to ask. */
  decision?: Decision;
  /** Set when the proxy refused before asking the policy, with why in words. */
  refusal?: { reason: RefusalReason; detail: string };
}

export function dnsAuditEntry(facts: DnsAuditFacts): AuditEntry {
  const d = facts.decision;
  return {
    time: isoTime(facts.startedAt),
    decision: facts.allow ? 'allow' : 'deny',
    reason: d?.reason ?? facts.refusal?.reason ?? 'config_not_loaded',
    rule: d?.rule ?? null,
    mode: d?.mode ?? null,
    would_deny: d?.wouldDeny ?? false,
    host: facts.name,
    host_source: 'dns',
    sni: null,
    alpn: null,
    port: null,
    dst: null,
    src: formatHostPort(facts.client.address, facts.client.port),
    protocol: 'dns',
    http: null,
    route: null,
    namespace: facts.namespace,
    listener: 'dns',
    bytes_sent: 0,
    bytes_received: 0,
    duration_ms: Math.max(0, facts.finishedAt - facts.startedAt),
    error: facts.refusal?.detail ?? null,
  };
}
