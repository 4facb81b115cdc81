import type { PortProtocol, TlsOrigination, Upstream } from './decision.ts';
import type { ServiceEntryResource } from './resources.ts';

/**
 * The allowlist compiled for lookups: everything a decision needs is
 * resolved ahead of time (namespaces of `exportTo: .`, ports by number, TLS
 * origination per port) so that deciding is map lookups and a few compares.
 */

export interface CompiledPort {
  number: number;
  protocol: PortProtocol;
  name: string;
  targetPort: number | undefined;
  upstream: Upstream;
  /** TLS SIMPLE the ServiceEntry asks for itself: protocol HTTP with targetPort 443. */
  entryTls: TlsOrigination | undefined;
}

/** One ServiceEntry, shared by the claims of all its hosts and addresses. */
export interface CompiledEntry {
  rule: string;
  namespace: string;
  name: string;
  resource: ServiceEntryResource;
  exportAll: boolean;
  /** Namespaces it is exported to, `.` resolved to its own. */
  exportTo: ReadonlySet<string>;
  /** `workloadSelector.labels` as pairs; undefined when there is none. */
  selector: readonly (readonly [string, string])[] | undefined;
  ports: ReadonlyMap<number, CompiledPort>;
}

/** The DestinationRule of one namespace that applies to a claim. */
export interface TlsBinding {
  rule: string;
  exportAll: boolean;
  exportTo: ReadonlySet<string>;
  /** Port -> origination; null when the rule says DISABLE; absent when it says nothing for that port. */
  byPort: ReadonlyMap<number, TlsOrigination | null>;
}

/** A ServiceEntry's claim on one host pattern or one address block. */
export interface Claim {
  entry: CompiledEntry;
  /** `api.example.com`, `*.example.com`, `10.0.0.0/16`. */
  pattern: string;
  /** DestinationRules by their namespace; undefined when none applies. */
  tls: ReadonlyMap<string, TlsBinding> | undefined;
}

/** Whether every label of the selector is on the workload. */
export function selectorMatches(selector: readonly (readonly [string, string])[], labels: Readonly<Record<string, string>> | undefined): boolean {
  if (labels === undefined) return selector.length === 0;
  for (let i = 0; i < selector.length; i++) {
    const pair = selector[i]!;
    if (labels[pair[0]] !== pair[1]) return false;
  }
  return true;
}

/** Claims in the order decisions consider them: by namespace, then name. */
export function compareClaims(a: Claim, b: Claim): number {
  return a.entry.namespace < b.entry.namespace ? -1 : a.entry.namespace > b.entry.namespace ? 1 : a.entry.name < b.entry.name ? -1 : a.entry.name > b.entry.name ? 1 : 0;
}
