import type { Decision } from '../policy/index.ts';
import type { DnsPolicy, LocalNames, LocalRecord } from './local-names.ts';

/**
 * What to do with a name, before anything is sent anywhere. A DNS query has
 * no port, so a name is allowed when any ServiceEntry visible to the
 * workload names it (Policy.decideName). The cluster's own names are never
 * judged: the search list sends every lookup through them first, and they
 * are the cluster's business, not the allowlist's.
 */
export type NameVerdict =
  | { action: 'forward'; cluster: true }
  /** Allowed (by a rule without addresses of its own, by ALLOW_ANY, or let through by REPORT: see `decision.wouldDeny`). */
  | { action: 'forward'; cluster: false; decision: Decision }
  | { action: 'local'; decision: Decision; record: LocalRecord }
  | { action: 'deny'; decision: Decision }
  /** No allowlist loaded yet: fail closed, but let the client retry. */
  | { action: 'unavailable' };

export interface JudgeContext {
  policy: DnsPolicy | undefined;
  local: LocalNames | undefined;
  namespace: string;
  labels: Readonly<Record<string, string>>;
  clusterDomain: string;
}

export function judgeName(name: string, ctx: JudgeContext): NameVerdict {
  if (isClusterName(name, ctx.clusterDomain)) return { action: 'forward', cluster: true };
  if (ctx.policy === undefined || ctx.local === undefined) return { action: 'unavailable' };
  const decision = ctx.policy.decideName({ host: name, sourceNamespace: ctx.namespace, workloadLabels: ctx.labels });
  if (!decision.allow) return { action: 'deny', decision };
  if (decision.reason === 'allowed_by_rule' && decision.rule !== undefined && decision.matchedHost !== undefined) {
    const record = ctx.local.lookup(decision.rule, decision.matchedHost);
    if (record !== undefined) return { action: 'local', decision, record };
  }
  return { action: 'forward', cluster: false, decision };
}

export function isClusterName(name: string, clusterDomain: string): boolean {
  return name === clusterDomain || (name.length > clusterDomain.length && name.endsWith(clusterDomain) && name.charCodeAt(name.length - clusterDomain.length - 1) === 46);
}
