import { EgressdError } from '../core/errors.ts';
import type { DecideInput, Decision, DecisionReason, PolicyMode, TlsOrigination } from './decision.ts';
import { AddressIndex, toIpv4 } from './address-index.ts';
import type { Claim, CompiledPort } from './compiled.ts';
import { compileEntries } from './compile-entries.ts';
import { explainDecision, type Explanation } from './explain.ts';
import { HostIndex } from './host-index.ts';
import { ANY_PORT, canonicalHost, FAIL_REASON, ipLiteral, NAME, NOT_A_HOST, probeClaims, type Probe } from './match.ts';
import type { CompiledSidecar } from './sidecar-scope.ts';
import { formatProblem } from './problem.ts';
import type { LoadedConfig, Resolution } from './resources.ts';
import { SidecarScopes } from './sidecar-scope.ts';
import { bindingVisible } from './tls-origination.ts';

/**
 * The compiled allowlist. `decide` is pure and synchronous, and does no
 * more than a few map lookups: it runs for every connection and DNS query.
 */

export interface PolicySummary {
  resources: number;
  serviceEntries: number;
  destinationRules: number;
  sidecars: number;
  /** Distinct host patterns across ServiceEntries. */
  hosts: number;
  /** Distinct addresses and CIDRs across ServiceEntries. */
  addresses: number;
}

/** What one ServiceEntry lets through, for components that pre-resolve or intercept by name (DNS). */
export interface Destination {
  rule: string;
  namespace: string;
  hosts: readonly string[];
  addresses: readonly string[];
  ports: readonly number[];
  resolution: Resolution;
  /** Addresses of the `endpoints` (IPs with STATIC, IPs or names otherwise). */
  endpoints: readonly string[];
  exportTo: readonly string[];
}

/** A name to judge without a port: what a DNS query carries. */
export type NameInput = Pick<DecideInput, 'host' | 'sourceNamespace' | 'workloadLabels'>;

export class Policy {
  readonly summary: PolicySummary;
  /** @internal for explain */
  readonly hosts: HostIndex;
  /** @internal for explain */
  readonly addresses: AddressIndex;
  /** @internal for explain */
  readonly scopes: SidecarScopes;
  readonly rootNamespace: string;
  readonly #destinations: readonly Destination[];
  /** Dot positions of the host being decided (a DNS name has at most 127). */
  readonly #dots = new Int32Array(128);

  constructor(config: LoadedConfig) {
    this.rootNamespace = config.rootNamespace;
    const compiled = compileEntries(config);
    this.hosts = compiled.hosts;
    this.addresses = compiled.addresses;
    this.scopes = new SidecarScopes(config.sidecars, config.rootNamespace);
    this.#destinations = Object.freeze(
      config.serviceEntries.map((e) =>
        Object.freeze({ rule: e.id, namespace: e.namespace, hosts: e.hosts, addresses: e.addresses, ports: e.ports.map((p) => p.number), resolution: e.resolution, endpoints: e.endpoints.map((p) => p.address), exportTo: e.exportTo }),
      ),
    );
    this.summary = Object.freeze({
      resources: config.serviceEntries.length + config.destinationRules.length + config.sidecars.length,
      serviceEntries: config.serviceEntries.length,
      destinationRules: config.destinationRules.length,
      sidecars: config.sidecars.length,
      hosts: compiled.hosts.exact.size + compiled.hosts.wildcard.size,
      addresses: compiled.addresses.size,
    });
  }

  /** Every ServiceEntry's hosts, addresses and ports. */
  destinations(): readonly Destination[] {
    return this.#destinations;
  }

  decide(input: DecideInput): Decision {
    const host = canonicalHost(input.host);
    const namespace = input.sourceNamespace;
    const sidecar = this.scopes.resolve(namespace, input.workloadLabels);
    const probe = this.#search(host, input.port, input.address, namespace, input.workloadLabels, sidecar);
    const mode: PolicyMode = sidecar === undefined ? 'REGISTRY_ONLY' : sidecar.mode;
    const allowed = probe.allowed;
    if (allowed !== undefined) {
      const matched = allowed.entry.ports.get(input.port)!;
      return {
        allow: true,
        wouldDeny: false,
        reason: 'allowed_by_rule',
        rule: allowed.entry.rule,
        matchedHost: allowed.pattern,
        mode,
        protocol: matched.protocol,
        tls: this.#tls(allowed, matched, namespace),
        upstream: matched.upstream,
        sidecar: sidecar === undefined ? undefined : sidecar.id,
      };
    }
    return denial(probe, mode, sidecar);
  }

  /**
   * Whether a ServiceEntry visible to the workload names `host` on any port:
   * how a DNS query is judged, since it carries no port. `port_not_allowed`
   * cannot come out; `protocol`, `tls` and `upstream` stay unset.
   */
  decideName(input: NameInput): Decision {
    const host = canonicalHost(input.host);
    const sidecar = this.scopes.resolve(input.sourceNamespace, input.workloadLabels);
    const probe = this.#search(host, ANY_PORT, undefined, input.sourceNamespace, input.workloadLabels, sidecar);
    const mode: PolicyMode = sidecar === undefined ? 'REGISTRY_ONLY' : sidecar.mode;
    const allowed = probe.allowed;
    if (allowed === undefined) return denial(probe, mode, sidecar);
    return {
      allow: true,
      wouldDeny: false,
      reason: 'allowed_by_rule',
      rule: allowed.entry.rule,
      matchedHost: allowed.pattern,
      mode,
      protocol: undefined,
      tls: undefined,
      upstream: undefined,
      sidecar: sidecar === undefined ? undefined : sidecar.id,
    };
  }

  /** The claim that allows the request, or the one that came closest: by name, then by address. */
  #search(
    host: string,
    port: number,
    dialled: string | undefined,
    namespace: string,
    labels: DecideInput['workloadLabels'],
    sidecar: CompiledSidecar | undefined,
  ): Probe {
    const egress = sidecar === undefined ? undefined : sidecar.egress;
    const probe: Probe = { allowed: undefined, best: undefined, bestFit: 0 };
    const literal = host === '' ? NOT_A_HOST : ipLiteral(host);
    let address: string | undefined;
    if (literal === NAME) {
      const exact = this.hosts.exact.get(host);
      if (exact === undefined || !probeClaims(probe, exact, port, namespace, labels, egress, host)) this.#probeWildcards(probe, host, port, namespace, labels, egress);
      address = dialled;
    } else if (literal !== NOT_A_HOST) {
      address = host;
    }
    if (probe.allowed === undefined && address !== undefined) {
      const v4 = literal >= 0 ? literal : toIpv4(address);
      if (v4 >= 0) {
        for (let level = 0; level < this.addresses.v4Levels; level++) {
          const claims = this.addresses.v4At(v4, level);
          if (claims !== undefined && probeClaims(probe, claims, port, namespace, labels, egress, undefined)) break;
        }
      } else {
        for (const claims of this.addresses.matches(address)) if (probeClaims(probe, claims, port, namespace, labels, egress, undefined)) break;
      }
    }
    return probe;
  }

  /**
   * Wildcard claims covering `host`, longest suffix first, probing only the
   * suffix lengths some wildcard has. Dot positions go to a scratch array:
   * decide is synchronous, so one per policy is enough.
   */
  #probeWildcards(probe: Probe, host: string, port: number, namespace: string, labels: DecideInput['workloadLabels'], egress: CompiledSidecar['egress']): void {
    const depths = this.hosts.depths;
    if (depths.length === 0) return;
    const dots = this.#dots;
    let count = 0;
    for (let i = host.length - 1; i >= 0 && count < dots.length; i--) if (host.charCodeAt(i) === 46) dots[count++] = i;
    // A wildcard with d labels covers names of more than d labels; its suffix starts after the d-th dot from the end.
    for (let k = 0; k < depths.length; k++) {
      const d = depths[k]!;
      if (d > count) continue;
      const claims = this.hosts.wildcard.get(host.slice(dots[d - 1]! + 1));
      if (claims !== undefined && probeClaims(probe, claims, port, namespace, labels, egress, host)) return;
    }
  }

  /** The decision, the rule that matched, and the closest rules that did not, with why. */
  explain(input: DecideInput): Explanation {
    return explainDecision(this, input);
  }

  /**
   * The DestinationRule Istio would pick: the client's namespace, then the
   * ServiceEntry's, then the root namespace, each only if exported to the
   * client. Without one, the ServiceEntry port's own origination.
   */
  #tls(claim: Claim, port: CompiledPort, namespace: string): TlsOrigination | undefined {
    const bindings = claim.tls;
    if (bindings === undefined) return port.entryTls;
    let binding = bindings.get(namespace);
    if (binding === undefined || !bindingVisible(binding, namespace)) binding = bindings.get(claim.entry.namespace);
    if (binding === undefined || !bindingVisible(binding, namespace)) binding = bindings.get(this.rootNamespace);
    if (binding === undefined || !bindingVisible(binding, namespace)) return port.entryTls;
    const tls = binding.byPort.get(port.number);
    return tls === undefined ? port.entryTls : tls === null ? undefined : tls;
  }
}

/** What no rule allowed becomes, by mode: denied, let through (ALLOW_ANY), or let through and marked (REPORT). */
function denial(probe: Probe, mode: PolicyMode, sidecar: CompiledSidecar | undefined): Decision {
  const best = mode === 'ALLOW_ANY' ? undefined : probe.best;
  const reason: DecisionReason = mode === 'ALLOW_ANY' ? 'allow_any' : best === undefined ? 'no_matching_rule' : FAIL_REASON[probe.bestFit]!;
  return {
    allow: mode !== 'REGISTRY_ONLY',
    wouldDeny: mode === 'REPORT',
    reason,
    rule: best === undefined ? undefined : best.entry.rule,
    matchedHost: best === undefined ? undefined : best.pattern,
    mode,
    protocol: undefined,
    tls: undefined,
    upstream: undefined,
    sidecar: sidecar === undefined ? undefined : sidecar.id,
  };
}

/** Compiles a loaded allowlist; refuses one with errors, so a bad rule fails at load, never per request. */
export function compilePolicy(config: LoadedConfig): Policy {
  if (config.errors.length > 0) {
    throw new EgressdError('EGRESSD_ERR_CONFIG_INVALID', `the allowlist has ${config.errors.length} error(s); first: ${formatProblem(config.errors[0]!)}`, {
      context: { errors: config.errors.length },
    });
  }
  return new Policy(config);
}
