import { patternCovers } from './names.ts';
import type { Problem, SourcePosition } from './problem.ts';
import type { DestinationRuleResource, PolicyResource, ServiceEntryResource, SidecarResource } from './resources.ts';

/**
 * Checks that need every resource at once: the same resource twice, two
 * ServiceEntries that disagree on a port's protocol, two namespace-wide
 * Sidecars, DestinationRules that reach no ServiceEntry. Returns the
 * resources to keep (the first of each duplicate).
 */
export function crossCheck(resources: readonly PolicyResource[], problems: Problem[]): PolicyResource[] {
  const kept = dropDuplicates(resources, problems);
  const entries = kept.filter((r): r is ServiceEntryResource => r.kind === 'ServiceEntry');
  checkProtocols(entries, problems);
  checkSidecars(kept.filter((r): r is SidecarResource => r.kind === 'Sidecar'), problems);
  for (const rule of kept) if (rule.kind === 'DestinationRule') checkDestinationRule(rule, entries, problems);
  return kept;
}

function at(p: SourcePosition): string {
  return `${p.file}:${p.line}:${p.col}`;
}

function dropDuplicates(resources: readonly PolicyResource[], problems: Problem[]): PolicyResource[] {
  const first = new Map<string, PolicyResource>();
  const kept: PolicyResource[] = [];
  for (const r of resources) {
    const earlier = first.get(r.id);
    if (earlier === undefined) {
      first.set(r.id, r);
      kept.push(r);
    } else {
      problems.push({ severity: 'error', ...r.source, resource: r.id, message: `defined twice; first at ${at(earlier.source)}` });
    }
  }
  return kept;
}

function checkProtocols(entries: readonly ServiceEntryResource[], problems: Problem[]): void {
  const claims = new Map<string, { entry: ServiceEntryResource; protocol: string; source: SourcePosition }>();
  for (const entry of entries) {
    entry.ports.forEach((port, i) => {
      for (const host of entry.hosts) {
        const key = `${host}:${port.number}`;
        const earlier = claims.get(key);
        if (earlier === undefined) {
          claims.set(key, { entry, protocol: port.protocol, source: port.source });
        } else if (earlier.protocol !== port.protocol && earlier.entry !== entry) {
          problems.push({
            severity: 'error',
            ...port.source,
            resource: entry.id,
            field: `spec.ports[${i}].protocol`,
            message: `host ${host} port ${port.number} is already declared with protocol ${earlier.protocol} by ${earlier.entry.id} (${at(earlier.source)})`,
          });
        }
      }
    });
  }
}

function checkSidecars(sidecars: readonly SidecarResource[], problems: Problem[]): void {
  const defaults = new Map<string, SidecarResource>();
  for (const sidecar of sidecars) {
    if (sidecar.workloadSelector !== undefined) continue;
    const earlier = defaults.get(sidecar.namespace);
    if (earlier === undefined) defaults.set(sidecar.namespace, sidecar);
    else {
      problems.push({
        severity: 'error',
        ...sidecar.source,
        resource: sidecar.id,
        message: `namespace ${sidecar.namespace} already has a Sidecar without workloadSelector: ${earlier.id} (${at(earlier.source)})`,
      });
    }
  }
}

function checkDestinationRule(rule: DestinationRuleResource, entries: readonly ServiceEntryResource[], problems: Problem[]): void {
  const matching = entries.filter((e) => e.hosts.some((h) => patternCovers(rule.host, h)));
  const warn = (message: string, field = 'spec.host', source: SourcePosition = rule.hostSource): void => {
    problems.push({ severity: 'warning', ...source, resource: rule.id, field, message });
  };
  if (matching.length === 0) {
    warn(`no ServiceEntry declares host ${rule.host}: this DestinationRule has no effect`);
    return;
  }
  const ports = matching.flatMap((e) => e.ports);
  rule.portTls.forEach(({ port }, i) => {
    if (!ports.some((p) => p.number === port)) {
      warn(`no ServiceEntry for ${rule.host} declares port ${port}`, `spec.trafficPolicy.portLevelSettings[${i}].port.number`);
    }
  });
  const originates = (port: number): boolean => {
    const tls = rule.portTls.find((p) => p.port === port)?.tls ?? rule.tls;
    return tls !== undefined && tls.mode !== 'DISABLE';
  };
  for (const p of ports) {
    if ((p.protocol === 'TLS' || p.protocol === 'HTTPS') && originates(p.number)) {
      warn(`originates TLS on port ${p.number}, whose protocol ${p.protocol} means the client already speaks TLS: TLS inside TLS`);
      break;
    }
  }
}
