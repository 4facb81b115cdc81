import type { Upstream } from './decision.ts';
import { AddressIndex } from './address-index.ts';
import type { Claim, CompiledEntry, CompiledPort } from './compiled.ts';
import { HostIndex } from './host-index.ts';
import type { LoadedConfig, ServiceEntryResource } from './resources.ts';
import { DestinationRuleIndex, entryTls } from './tls-origination.ts';

/** ServiceEntries (with their DestinationRules) into the host and address indexes. */
export function compileEntries(config: LoadedConfig): { hosts: HostIndex; addresses: AddressIndex } {
  const hosts = new HostIndex();
  const addresses = new AddressIndex();
  const rules = new DestinationRuleIndex(config.destinationRules);
  for (const resource of config.serviceEntries) {
    const entry = compileEntry(resource);
    for (const pattern of resource.hosts) hosts.add({ entry, pattern, tls: rules.bindings(pattern, entry) });
    // A match by address has no host name; DestinationRules bind through the entry's first host.
    const first = resource.hosts[0];
    const addressTls = first === undefined ? undefined : rules.bindings(first, entry);
    for (const pattern of resource.addresses) addresses.add({ entry, pattern, tls: addressTls } satisfies Claim);
  }
  hosts.seal();
  addresses.seal();
  return { hosts, addresses };
}

function compileEntry(resource: ServiceEntryResource): CompiledEntry {
  const exportTo = new Set(resource.exportTo.map((ns) => (ns === '.' ? resource.namespace : ns)));
  const ports = new Map<number, CompiledPort>();
  for (const port of resource.ports) {
    const dial = port.targetPort ?? port.number;
    const upstream: Upstream = { resolution: resource.resolution, port: dial };
    if (resource.endpoints.length > 0) {
      upstream.endpoints = Object.freeze(resource.endpoints.map((e) => Object.freeze({ address: e.address, port: e.ports[port.name] ?? dial })));
    }
    if (resource.addresses.length > 0) upstream.addresses = Object.freeze([...resource.addresses]);
    ports.set(port.number, {
      number: port.number,
      protocol: port.protocol,
      name: port.name,
      targetPort: port.targetPort,
      upstream: Object.freeze(upstream),
      entryTls: entryTls(resource, port),
    });
  }
  return {
    rule: resource.id,
    namespace: resource.namespace,
    name: resource.name,
    resource,
    exportAll: exportTo.has('*'),
    exportTo,
    selector: resource.workloadSelector === undefined ? undefined : Object.entries(resource.workloadSelector),
    ports,
  };
}
