import type { PolicyMode } from './decision.ts';
import { selectorMatches } from './compiled.ts';
import type { SidecarResource } from './resources.ts';

/**
 * Which Sidecar governs a workload, resolved as Istio does: a Sidecar whose
 * workloadSelector matches the workload, else its namespace's Sidecar
 * without selector, else the root namespace's (the mesh default). Mode is
 * inherited along the same chain when a Sidecar does not set it; egress
 * hosts are not (a Sidecar without `egress` narrows nothing).
 */

/** One `egress[].hosts` entry, ready to match. */
export interface CompiledEgressHost {
  /** Namespace the ServiceEntry must live in; undefined for `*`; null for `~` (none). */
  namespace: string | undefined | null;
  anyHost: boolean;
  /** Exact host, or undefined. */
  exact: string | undefined;
  /** `.example.com` for `*.example.com`, or undefined. */
  suffix: string | undefined;
  /** As written, for explanations. */
  text: string;
}

export interface CompiledSidecar {
  id: string;
  namespace: string;
  name: string;
  selector: readonly (readonly [string, string])[] | undefined;
  mode: PolicyMode;
  egress: readonly CompiledEgressHost[] | undefined;
}

interface NamespaceScope {
  /** Sidecars with a workloadSelector, by name. */
  selected: CompiledSidecar[];
  fallback: CompiledSidecar | undefined;
}

export class SidecarScopes {
  readonly #byNamespace = new Map<string, NamespaceScope>();
  readonly #meshDefault: CompiledSidecar | undefined;

  constructor(sidecars: readonly SidecarResource[], rootNamespace: string) {
    const defaults = new Map<string, SidecarResource>();
    for (const s of sidecars) if (s.workloadSelector === undefined && !defaults.has(s.namespace)) defaults.set(s.namespace, s);
    const root = defaults.get(rootNamespace);
    const rootMode: PolicyMode = root?.mode ?? 'REGISTRY_ONLY';
    this.#meshDefault = root === undefined ? undefined : compileSidecar(root, rootMode);
    const sorted = [...sidecars].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const s of sorted) {
      const nsDefault = defaults.get(s.namespace);
      let scope = this.#byNamespace.get(s.namespace);
      if (scope === undefined) {
        const fallback = nsDefault === undefined ? this.#meshDefault : nsDefault === root ? this.#meshDefault : compileSidecar(nsDefault, nsDefault.mode ?? rootMode);
        scope = { selected: [], fallback };
        this.#byNamespace.set(s.namespace, scope);
      }
      if (s.workloadSelector !== undefined) scope.selected.push(compileSidecar(s, s.mode ?? nsDefault?.mode ?? rootMode));
    }
  }

  /** The Sidecar governing a workload; undefined when none applies (mode REGISTRY_ONLY, no narrowing). */
  resolve(namespace: string, labels: Readonly<Record<string, string>> | undefined): CompiledSidecar | undefined {
    const scope = this.#byNamespace.get(namespace);
    if (scope === undefined) return this.#meshDefault;
    const selected = scope.selected;
    for (let i = 0; i < selected.length; i++) {
      const s = selected[i]!;
      if (selectorMatches(s.selector!, labels)) return s;
    }
    return scope.fallback;
  }
}

function compileSidecar(s: SidecarResource, mode: PolicyMode): CompiledSidecar {
  return {
    id: s.id,
    namespace: s.namespace,
    name: s.name,
    selector: s.workloadSelector === undefined ? undefined : Object.entries(s.workloadSelector),
    mode,
    egress: s.egressHosts?.map((h) => ({
      namespace: h.namespace === '*' ? undefined : h.namespace === '~' ? null : h.namespace === '.' ? s.namespace : h.namespace,
      anyHost: h.host === '*',
      exact: h.host === '*' || h.host.startsWith('*.') ? undefined : h.host,
      suffix: h.host.startsWith('*.') ? h.host.slice(1) : undefined,
      text: `${h.namespace}/${h.host}`,
    })),
  };
}

/** Whether the Sidecar's egress hosts let a workload see `host` of a ServiceEntry in `entryNamespace`. */
export function egressAllowsHost(egress: readonly CompiledEgressHost[], entryNamespace: string, host: string): boolean {
  for (let i = 0; i < egress.length; i++) {
    const e = egress[i]!;
    if (e.namespace === null || (e.namespace !== undefined && e.namespace !== entryNamespace)) continue;
    if (e.anyHost || e.exact === host) return true;
    if (e.suffix !== undefined && host.length > e.suffix.length && host.endsWith(e.suffix)) return true;
  }
  return false;
}

/**
 * The same for a ServiceEntry matched by address, where there is no
 * requested name: one of its host patterns must be inside an egress host.
 */
export function egressAllowsPatterns(egress: readonly CompiledEgressHost[], entryNamespace: string, patterns: readonly string[]): boolean {
  for (const pattern of patterns) {
    const base = pattern.startsWith('*.') ? pattern.slice(1) : pattern;
    for (const e of egress) {
      if (e.namespace === null || (e.namespace !== undefined && e.namespace !== entryNamespace)) continue;
      if (e.anyHost || e.exact === pattern) return true;
      if (e.suffix !== undefined && (base === e.suffix || (base.length > e.suffix.length && base.endsWith(e.suffix)))) return true;
    }
  }
  return false;
}
