import type { Client, DnsState } from './handler.ts';
import { typeLabelOf } from './metrics.ts';
import { readQueryKey } from './query-key.ts';
import { agedCopy } from './wire.ts';

/**
 * The cache-hit path: most queries ask a name again, and the answer is a
 * copy of cached bytes with the client's id, its question as it wrote it
 * (letter case too: 0x20 randomisation survives) and TTLs aged. Here that
 * takes no dns-packet decode and no promise; the stages are those of the
 * full path, nothing skipped:
 *
 * - the name is judged under the allowlist in force, on every query, so a
 *   reload that denies it stops it here; only an allowed forward (a cluster
 *   name, or a rule without addresses of its own, or ALLOW_ANY) is answered;
 * - the answer's addresses are attributed to the asked name for their TTL;
 * - the query counts in `queries` {type, cached} and `cacheLookups` {hit}.
 *
 * Everything else returns undefined and takes the full path, which does
 * the same and more: a miss, a query that is not of the plainest shape
 * (query-key.ts: malformed ones included, so they still get FORMERR and are
 * counted), a denied name (its NXDOMAIN or REFUSED and its audit record), a
 * REPORT would-deny (audited on every query), a local name, an answer too
 * big for the client's UDP size (sent truncated).
 */
export function answerCacheHit(state: DnsState, packet: Buffer, client: Client): Buffer | undefined {
  const q = readQueryKey(packet);
  if (q === undefined) return undefined;
  const hit = state.cache.get(q.key);
  if (hit === undefined) return undefined;
  const { answer, elapsed } = hit;
  if (client.transport === 'udp' && answer.bytes.length > q.udpLimit) return undefined;
  const verdict = state.judge(q.name);
  if (verdict.action !== 'forward' || (!verdict.cluster && verdict.decision.wouldDeny)) return undefined;
  for (const a of answer.addresses) state.attribution.remember(a.address, q.name, a.ttl > elapsed ? a.ttl - elapsed : 0);
  state.metrics.countCacheHit(typeLabelOf(q.type));
  return agedCopy(answer.bytes, answer.layout, q.id, packet.subarray(12, q.questionEnd), elapsed);
}
