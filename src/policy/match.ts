import { isIP } from 'node:net';
import { normalizeHost } from '../core/net.ts';
import type { DecisionReason } from './decision.ts';
import { toIpv4 } from './address-index.ts';
import { selectorMatches, type Claim } from './compiled.ts';
import { egressAllowsHost, egressAllowsPatterns, type CompiledSidecar } from './sidecar-scope.ts';

/** The steps of a decision: canonical host, literal or name, how well each claim fits. */

/** How closely a claim came to allowing a request; a higher fit is closer. */
type Fit = 1 | 2 | 3 | 4;
const NOT_EXPORTED = 1;
const NOT_SELECTED = 2;
const WRONG_PORT = 3;
const ALLOWED = 4;

/** The denial reason of each fit below ALLOWED (0: nothing named the destination). */
export const FAIL_REASON: readonly DecisionReason[] = ['no_matching_rule', 'not_exported', 'not_selected', 'port_not_allowed'];

/** A port that every claim lists: judging a name alone (a DNS query). */
export const ANY_PORT = -1;

/** ipLiteral results besides an IPv4 value. */
export const NAME = -1;
export const NOT_A_HOST = -2;

/** The best claim seen so far while deciding. */
export interface Probe {
  allowed: Claim | undefined;
  best: Claim | undefined;
  bestFit: number;
}

/** Records the claims' fits; true once one allows. Claims are in their deterministic order. */
export function probeClaims(
  probe: Probe,
  claims: readonly Claim[],
  port: number,
  namespace: string,
  labels: Readonly<Record<string, string>> | undefined,
  egress: CompiledSidecar['egress'],
  host: string | undefined,
): boolean {
  for (let i = 0; i < claims.length; i++) {
    const claim = claims[i]!;
    const fit = fitOf(claim, port, namespace, labels, egress, host);
    if (fit === ALLOWED) {
      probe.allowed = claim;
      return true;
    }
    if (fit > probe.bestFit) {
      probe.bestFit = fit;
      probe.best = claim;
    }
  }
  return false;
}

/**
 * How well a claim fits a request. `host` is the requested name, or
 * undefined for a match by address (then the Sidecar scope is checked
 * against the ServiceEntry's own hosts).
 */
function fitOf(
  claim: Claim,
  port: number,
  namespace: string,
  labels: Readonly<Record<string, string>> | undefined,
  egress: CompiledSidecar['egress'],
  host: string | undefined,
): Fit {
  const entry = claim.entry;
  if (!entry.exportAll && !entry.exportTo.has(namespace)) return NOT_EXPORTED;
  if (entry.selector !== undefined && !selectorMatches(entry.selector, labels)) return NOT_SELECTED;
  if (egress !== undefined) {
    const visible = host === undefined ? egressAllowsPatterns(egress, entry.namespace, entry.resource.hosts) : egressAllowsHost(egress, entry.namespace, host);
    if (!visible) return NOT_SELECTED;
  }
  return port === ANY_PORT || entry.ports.has(port) ? ALLOWED : WRONG_PORT;
}

/**
 * The host in canonical form, or '' when it cannot name a destination: a
 * `*` is a pattern, not a name, and an empty label (`.example.com`,
 * `a..example.com`) must not slip under a wildcard. Most callers already
 * pass lower-case ASCII without a trailing dot; that case costs one scan
 * and no allocation, upper case one toLowerCase.
 */
export function canonicalHost(raw: string): string {
  const last = raw.length - 1;
  let upper = false;
  let previous = 46; // as if after a dot: a leading dot is an empty label
  for (let i = 0; i <= last; i++) {
    const c = raw.charCodeAt(i);
    if ((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 95) {
      previous = c;
      continue;
    }
    if (c >= 65 && c <= 90) {
      upper = true;
      previous = c;
      continue;
    }
    if (c === 46 && previous !== 46 && i !== last) {
      previous = c;
      continue;
    }
    const host = normalizeHost(raw);
    return host.includes('*') || host.startsWith('.') || host.includes('..') ? '' : host;
  }
  return upper ? raw.toLowerCase() : raw;
}

/** NAME for a name; the IPv4 value for an IPv4 literal; -3 for an IPv6 literal. */
export function ipLiteral(host: string): number {
  const c = host.charCodeAt(host.length - 1);
  if (!(c >= 48 && c <= 57) && !host.includes(':')) return NAME; // names end in a letter
  const v4 = toIpv4(host);
  if (v4 >= 0) return v4;
  return isIP(host) === 6 ? -3 : NAME;
}

