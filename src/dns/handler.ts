import type { AuditSink } from '../core/audit.ts';
import type { Logger } from '../core/logger.ts';
import type { Attribution } from './attribution.ts';
import { dnsAuditEntry } from './audit-record.ts';
import type { DnsCache } from './cache.ts';
import { answerCacheHit } from './cache-hits.ts';
import { clientUdpLimit, localAnswer, parseQuery, truncated, type Query } from './codec.ts';
import type { Forwarded, Forwarder } from './forwarder.ts';
import type { NameVerdict } from './judge.ts';
import type { LocalRecord } from './local-names.ts';
import { typeLabel, type DnsMetrics, type QueryResult } from './metrics.ts';
import type { Transport } from './upstream.ts';
import { RCODE } from './wire.ts';

/**
 * One query, from bytes to bytes, as stages: parse, judge the name, answer
 * (locally, refused, or forwarded), remember which name the answer's
 * addresses belong to, fit the answer to the client's transport. Never
 * throws: whatever goes wrong after parsing is a SERVFAIL. A cache hit of
 * a plain query takes a shorter way through the same stages first
 * (cache-hits.ts).
 */

export interface DnsState {
  /** The name under the allowlist in force now (judgeName): called for every query, cache hits included. */
  judge(name: string): NameVerdict;
  namespace: string;
  denyRcode: 'NXDOMAIN' | 'REFUSED';
  localTtlSeconds: number;
  forwarder: Forwarder;
  /** The forwarder's cache, which the cache-hit path reads directly. */
  cache: DnsCache;
  attribution: Attribution;
  audit: AuditSink;
  metrics: DnsMetrics;
  logger: Logger;
  now(): number;
}

export interface Client {
  address: string;
  port: number;
  transport: Transport;
}

/** Types a local name answers itself; any other type is forwarded (the name was allowed). */
const LOCAL_TYPES = new Set(['A', 'AAAA', 'ANY', 'UNKNOWN_64', 'UNKNOWN_65']);

/** What respond() settles on: the bytes and how the query ended. */
type Outcome = [answer: Buffer, result: QueryResult];

/**
 * The answer to send back, or undefined to stay silent. Synchronous unless
 * the answer has to come from upstream: local answers, refusals and cache
 * hits (most queries) skip the promise machinery.
 */
export function answerQuery(state: DnsState, packet: Buffer, client: Client): Buffer | undefined | Promise<Buffer | undefined> {
  const hit = answerCacheHit(state, packet, client);
  if (hit !== undefined) return hit;
  const startedAt = state.now();
  const parsed = parseQuery(packet);
  if (parsed.kind === 'drop') {
    state.metrics.malformed.inc({ transport: client.transport });
    return undefined;
  }
  if (parsed.kind === 'reject') {
    if (parsed.malformed) state.metrics.malformed.inc({ transport: client.transport });
    state.metrics.queries.inc({ type: 'NONE', result: parsed.rcode.toLowerCase() as QueryResult });
    return parsed.reply;
  }
  const query = parsed.query;
  let outcome: Outcome | Promise<Outcome>;
  try {
    outcome = respond(state, query, client, startedAt);
  } catch (err) {
    outcome = failed(state, query, err);
  }
  if (outcome instanceof Promise) return outcome.then((settled) => finish(state, query, client, settled), (err: unknown) => finish(state, query, client, failed(state, query, err)));
  return finish(state, query, client, outcome);
}

function failed(state: DnsState, query: Query, err: unknown): Outcome {
  state.logger.warn({ err, name: query.name, type: query.type }, 'DNS query failed');
  return [localAnswer(query, RCODE.SERVFAIL, [], 0), 'servfail'];
}

function finish(state: DnsState, query: Query, client: Client, [answer, result]: Outcome): Buffer {
  state.metrics.queries.inc({ type: typeLabel(query.type), result });
  if (client.transport === 'udp' && answer.length > clientUdpLimit(query)) {
    state.metrics.truncated.inc();
    return truncated(query, answer);
  }
  return answer;
}

function respond(state: DnsState, query: Query, client: Client, startedAt: number): Outcome | Promise<Outcome> {
  const verdict = state.judge(query.name);
  switch (verdict.action) {
    case 'unavailable':
      audit(state, query, client, startedAt, verdict, false);
      return [localAnswer(query, RCODE.SERVFAIL, [], 0), 'servfail'];
    case 'deny':
      audit(state, query, client, startedAt, verdict, false);
      return [localAnswer(query, RCODE[state.denyRcode], [], 0), 'denied'];
    case 'local':
      if (LOCAL_TYPES.has(query.type)) return [answerLocally(state, query, verdict.record), 'local'];
      break;
    case 'forward':
      break;
  }
  if (verdict.action === 'forward' && !verdict.cluster && verdict.decision.wouldDeny) audit(state, query, client, startedAt, verdict, true);
  const cached = state.forwarder.cached(query);
  if (cached !== undefined) return [remember(state, query, cached), 'cached'];
  return state.forwarder.forward(query).then(
    (forwarded): Outcome => [remember(state, query, forwarded), forwarded.cached ? 'cached' : 'forwarded'],
    (err: unknown): Outcome => {
      state.metrics.upstreamFailures.inc();
      state.logger.warn({ err, name: query.name, type: query.type }, 'no upstream answered');
      return [localAnswer(query, RCODE.SERVFAIL, [], 0), 'servfail'];
    },
  );
}

function remember(state: DnsState, query: Query, forwarded: Forwarded): Buffer {
  for (const a of forwarded.addresses) state.attribution.remember(a.address, query.name, a.ttl);
  return forwarded.bytes;
}

function answerLocally(state: DnsState, query: Query, record: LocalRecord): Buffer {
  const addresses = query.type === 'A' ? record.ipv4 : query.type === 'AAAA' ? record.ipv6 : query.type === 'ANY' ? [...record.ipv4, ...record.ipv6] : [];
  for (const address of addresses) state.attribution.remember(address, query.name, state.localTtlSeconds);
  return localAnswer(query, RCODE.NOERROR, addresses, state.localTtlSeconds);
}

function audit(state: DnsState, query: Query, client: Client, startedAt: number, verdict: NameVerdict, allow: boolean): void {
  state.audit.write(
    dnsAuditEntry({
      startedAt,
      finishedAt: state.now(),
      name: query.name,
      client,
      namespace: state.namespace,
      allow,
      ...('decision' in verdict ? { decision: verdict.decision } : { refusal: { reason: 'config_not_loaded' as const, detail: 'no valid configuration loaded yet' } }),
    }),
  );
}
