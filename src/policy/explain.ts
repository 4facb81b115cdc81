import type { DecideInput, Decision, PortProtocol } from './decision.ts';
import type { AddressIndex } from './address-index.ts';
import { selectorMatches, type Claim } from './compiled.ts';
import type { HostIndex } from './host-index.ts';
import { canonicalHost, ipLiteral, NAME } from './match.ts';
import type { SourcePosition } from './problem.ts';
import { egressAllowsHost, egressAllowsPatterns, type CompiledSidecar, type SidecarScopes } from './sidecar-scope.ts';

/**
 * What `egressctl check` prints: the decision, the rule behind it, and the
 * rules that came close, each with why it did not apply. Slow on purpose
 * (it looks at everything); never on the connection path.
 */

export type NearMissReason =
  /** The host matched but the rule does not list the port. */
  | 'port_not_allowed'
  /** The rule's exportTo leaves the caller's namespace out. */
  | 'not_exported'
  /** The rule's workloadSelector does not select the workload. */
  | 'workload_selector'
  /** The governing Sidecar's egress hosts leave the rule out. */
  | 'sidecar_egress'
  /** `*.example.com` was asked about `example.com`. */
  | 'wildcard_apex'
  /** A rule for another name in the same domain. */
  | 'same_domain';

export interface RulePort {
  number: number;
  protocol: PortProtocol;
  name: string;
  targetPort?: number;
}

export interface RuleRef {
  /** `ServiceEntry/namespace/name`. */
  rule: string;
  /** The host pattern or address block of the rule that was considered. */
  matchedHost: string;
  ports: readonly RulePort[];
  source: SourcePosition;
}

export interface NearMiss extends RuleRef {
  why: NearMissReason;
  message: string;
}

export interface Explanation {
  /** The request as decided: host normalized, labels filled in. */
  input: { host: string; port: number; sourceNamespace: string; workloadLabels: Readonly<Record<string, string>>; address?: string };
  decision: Decision;
  /** The rule that allowed the request, when one did. */
  matched?: RuleRef;
  /** Closest first: rules whose host or address matched, then wildcards of the apex, then the same domain. */
  nearMisses: NearMiss[];
}

export interface PolicyView {
  readonly hosts: HostIndex;
  readonly addresses: AddressIndex;
  readonly scopes: SidecarScopes;
  decide(input: DecideInput): Decision;
}

const SAME_DOMAIN_LIMIT = 5;

export function explainDecision(policy: PolicyView, input: DecideInput): Explanation {
  const decision = policy.decide(input);
  const host = canonicalHost(input.host);
  const labels = input.workloadLabels ?? {};
  const sidecar = policy.scopes.resolve(input.sourceNamespace, input.workloadLabels);
  const isName = host !== '' && ipLiteral(host) === NAME;
  const explained: Explanation = {
    input: { host, port: input.port, sourceNamespace: input.sourceNamespace, workloadLabels: labels },
    decision,
    nearMisses: [],
  };
  if (input.address !== undefined) explained.input.address = input.address;
  const seen = new Set<Claim>();
  const consider = (claims: readonly Claim[], byName: boolean): void => {
    for (const claim of claims) {
      if (seen.has(claim)) continue;
      seen.add(claim);
      if (decision.reason === 'allowed_by_rule' && claim.entry.rule === decision.rule && claim.pattern === decision.matchedHost) {
        explained.matched = ref(claim);
        continue;
      }
      const miss = whyNot(claim, input, labels, sidecar, byName ? host : undefined);
      if (miss !== undefined) explained.nearMisses.push(miss);
    }
  };
  if (isName) for (const list of policy.hosts.matches(host)) consider(list, true);
  const address = isName ? input.address : host;
  if (address !== undefined && address !== '') for (const list of policy.addresses.matches(address)) consider(list, false);
  if (isName) {
    for (const claim of policy.hosts.wildcard.get(host) ?? []) {
      explained.nearMisses.push({ ...ref(claim), why: 'wildcard_apex', message: `${claim.pattern} covers names under ${host}, not ${host} itself` });
    }
  }
  if (isName && explained.matched === undefined && explained.nearMisses.length === 0) {
    explained.nearMisses.push(...sameDomain(policy.hosts, host));
  }
  return explained;
}

function ref(claim: Claim): RuleRef {
  const resource = claim.entry.resource;
  return {
    rule: claim.entry.rule,
    matchedHost: claim.pattern,
    ports: resource.ports.map((p) => (p.targetPort === undefined ? { number: p.number, protocol: p.protocol, name: p.name } : { number: p.number, protocol: p.protocol, name: p.name, targetPort: p.targetPort })),
    source: resource.source,
  };
}

function whyNot(
  claim: Claim,
  input: DecideInput,
  labels: Readonly<Record<string, string>>,
  sidecar: CompiledSidecar | undefined,
  host: string | undefined,
): NearMiss | undefined {
  const entry = claim.entry;
  const resource = entry.resource;
  const miss = (why: NearMissReason, message: string): NearMiss => ({ ...ref(claim), why, message });
  if (!entry.exportAll && !entry.exportTo.has(input.sourceNamespace)) {
    const to = resource.exportTo.map((ns) => (ns === '.' ? `. (${entry.namespace})` : ns)).join(', ');
    return miss('not_exported', `exportTo [${to}] does not include namespace ${input.sourceNamespace}`);
  }
  if (entry.selector !== undefined && !selectorMatches(entry.selector, input.workloadLabels)) {
    return miss('workload_selector', `workloadSelector ${formatLabels(Object.fromEntries(entry.selector))} does not select a workload with labels ${formatLabels(labels)}`);
  }
  if (sidecar?.egress !== undefined) {
    const visible = host === undefined ? egressAllowsPatterns(sidecar.egress, entry.namespace, resource.hosts) : egressAllowsHost(sidecar.egress, entry.namespace, host);
    if (!visible) {
      const wanted = `${entry.namespace}/${host ?? resource.hosts.join(',')}`;
      return miss('sidecar_egress', `${sidecar.id} egress hosts [${sidecar.egress.map((e) => e.text).join(', ')}] do not include ${wanted}`);
    }
  }
  if (!entry.ports.has(input.port)) {
    return miss('port_not_allowed', `port ${input.port} is not declared (ports: ${resource.ports.map((p) => `${p.number}/${p.protocol}`).join(', ')})`);
  }
  return undefined; // it would allow too; an earlier rule won
}

function formatLabels(labels: Readonly<Record<string, string>>): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
  return pairs.length === 0 ? '(none)' : pairs.join(',');
}

/** Rules for other names under the host's parent domain, for a name no rule mentions. */
function sameDomain(hosts: HostIndex, host: string): NearMiss[] {
  const dot = host.indexOf('.');
  const parent = host.slice(dot + 1);
  if (dot < 0 || !parent.includes('.')) return [];
  const related = (name: string): boolean => name === parent || name.endsWith(`.${parent}`);
  const out: NearMiss[] = [];
  const keys = [...hosts.exact.keys()].filter(related).sort();
  for (const key of keys) {
    for (const claim of hosts.exact.get(key)!) out.push({ ...ref(claim), why: 'same_domain', message: `names ${claim.pattern}, not ${host}` });
  }
  for (const key of [...hosts.wildcard.keys()].filter(related).sort()) {
    for (const claim of hosts.wildcard.get(key)!) out.push({ ...ref(claim), why: 'same_domain', message: `names ${claim.pattern}, which does not cover ${host}` });
  }
  return out.slice(0, SAME_DOMAIN_LIMIT);
}
