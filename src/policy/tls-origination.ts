import type { TlsOrigination } from './decision.ts';
import type { CompiledEntry, CompiledPort, TlsBinding } from './compiled.ts';
import type { ClientTlsSettings, DestinationRuleResource, ServiceEntryPort, ServiceEntryResource } from './resources.ts';

/**
 * When the gateway must originate TLS, decided at compile time per claim and
 * port. Two sources, as in Istio's egress TLS origination examples: a
 * DestinationRule's client TLS settings for the host (its port-level
 * settings replace the rule-level ones), or a ServiceEntry port with
 * protocol HTTP and targetPort 443. An explicit DISABLE wins over the latter.
 */

/** TLS SIMPLE asked for by the ServiceEntry port itself, or undefined. */
export function entryTls(entry: ServiceEntryResource, port: ServiceEntryPort): TlsOrigination | undefined {
  if (port.protocol !== 'HTTP' || port.targetPort !== 443) return undefined;
  const tls: TlsOrigination = { mode: 'SIMPLE', port: 443, source: entry.id };
  if (entry.subjectAltNames.length > 0) tls.subjectAltNames = [...entry.subjectAltNames];
  return Object.freeze(tls);
}

/** DestinationRules by the host they name, to find the ones covering a claim. */
export class DestinationRuleIndex {
  readonly #byHost = new Map<string, DestinationRuleResource[]>();

  constructor(rules: readonly DestinationRuleResource[]) {
    const sorted = [...rules].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const rule of sorted) {
      const list = this.#byHost.get(rule.host);
      if (list === undefined) this.#byHost.set(rule.host, [rule]);
      else list.push(rule);
    }
  }

  get empty(): boolean {
    return this.#byHost.size === 0;
  }

  /**
   * For a claim's host pattern, the most specific covering rule of each
   * namespace: the same host first, then wildcards from the longest suffix.
   */
  bindings(pattern: string, entry: CompiledEntry): Map<string, TlsBinding> | undefined {
    if (this.#byHost.size === 0) return undefined;
    let out: Map<string, TlsBinding> | undefined;
    const consider = (rules: DestinationRuleResource[] | undefined): void => {
      for (const rule of rules ?? []) {
        out ??= new Map();
        if (!out.has(rule.namespace)) out.set(rule.namespace, binding(rule, entry));
      }
    };
    consider(this.#byHost.get(pattern));
    const base = pattern.startsWith('*.') ? pattern.slice(2) : pattern;
    for (let dot = base.indexOf('.'); dot >= 0; dot = base.indexOf('.', dot + 1)) consider(this.#byHost.get(`*${base.slice(dot)}`));
    return out;
  }
}

function binding(rule: DestinationRuleResource, entry: CompiledEntry): TlsBinding {
  const byPort = new Map<number, TlsOrigination | null>();
  for (const port of entry.ports.values()) {
    const settings = rule.portTls.find((p) => p.port === port.number)?.tls ?? rule.tls;
    if (settings !== undefined) byPort.set(port.number, origination(rule, settings, entry, port));
  }
  const exportTo = new Set(rule.exportTo.map((ns) => (ns === '.' ? rule.namespace : ns)));
  return { rule: rule.id, exportAll: exportTo.has('*'), exportTo, byPort };
}

function origination(rule: DestinationRuleResource, tls: ClientTlsSettings, entry: CompiledEntry, port: CompiledPort): TlsOrigination | null {
  if (tls.mode === 'DISABLE') return null;
  const out: TlsOrigination = { mode: tls.mode, port: port.targetPort ?? port.number, source: rule.id };
  if (tls.sni !== undefined) out.sni = tls.sni;
  const sans = tls.subjectAltNames ?? entry.resource.subjectAltNames;
  if (sans.length > 0) out.subjectAltNames = [...sans];
  if (tls.caCertificates !== undefined) out.caCertificates = tls.caCertificates;
  if (tls.credentialName !== undefined) out.credentialName = tls.credentialName;
  if (tls.insecureSkipVerify !== undefined) out.insecureSkipVerify = tls.insecureSkipVerify;
  return Object.freeze(out);
}

/** Whether a binding (a DestinationRule) is visible to a namespace. */
export function bindingVisible(binding: TlsBinding, namespace: string): boolean {
  return binding.exportAll || binding.exportTo.has(namespace);
}
