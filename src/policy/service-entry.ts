import { isIP } from 'node:net';
import type { PortProtocol } from './decision.ts';
import { parseCidr } from './cidr.ts';
import { checkHostPattern, isDns1123Label } from './names.ts';
import type { ResourceContext } from './resource-context.ts';
import type { Resolution, ResourceMeta, ServiceEntryEndpoint, ServiceEntryPort, ServiceEntryResource } from './resources.ts';
import {
  asArray,
  asInteger,
  asObject,
  asString,
  readExportTo,
  readPort,
  readWorkloadSelector,
  stringItems,
  type Fields,
} from './spec-reader.ts';

/** The meaning checks of a ServiceEntry, after the schema check; returns the normalized resource. */

export const PORT_PROTOCOLS: readonly PortProtocol[] = ['HTTP', 'HTTPS', 'HTTP2', 'GRPC', 'TLS', 'TCP', 'MONGO'];
const RESOLUTIONS: readonly Resolution[] = ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN'];

export function readServiceEntry(ctx: ResourceContext, meta: ResourceMeta, spec: Fields): ServiceEntryResource {
  const known = RESOLUTIONS.find((r) => r === spec.resolution);
  const resolution = known ?? 'NONE';
  // An unknown resolution already failed the schema; judging endpoints by the NONE default would only add noise.
  const endpoints = readEndpoints(ctx, spec, resolution, known !== undefined || spec.resolution === undefined);
  const hosts = readHosts(ctx, spec, resolution, endpoints.length > 0);
  const location = spec.location === 'MESH_INTERNAL' ? 'MESH_INTERNAL' : 'MESH_EXTERNAL';
  if (location === 'MESH_INTERNAL') {
    ctx.warn(['spec', 'location'], 'MESH_INTERNAL has no effect in egressd: every ServiceEntry is an external destination');
  }
  const entry: ServiceEntryResource = {
    ...meta,
    kind: 'ServiceEntry',
    hosts,
    addresses: readAddresses(ctx, spec),
    ports: readPorts(ctx, spec),
    location,
    resolution,
    endpoints,
    exportTo: readExportTo(ctx, spec.exportTo, ['spec', 'exportTo']),
    subjectAltNames: stringItems(spec.subjectAltNames).map(([, s]) => s),
  };
  const selector = readWorkloadSelector(ctx, spec, 'every workload in the exported namespaces may use this ServiceEntry');
  if (selector !== undefined) entry.workloadSelector = selector;
  return entry;
}

function readHosts(ctx: ResourceContext, spec: Fields, resolution: Resolution, hasEndpoints: boolean): string[] {
  const items = stringItems(spec.hosts);
  if (spec.hosts === undefined || spec.hosts === null || (Array.isArray(spec.hosts) && spec.hosts.length === 0)) {
    ctx.error(['spec', 'hosts'], 'at least one host is required');
  }
  const hosts: string[] = [];
  for (const [i, raw] of items) {
    const path = ['spec', 'hosts', i];
    const check = checkHostPattern(raw);
    if (!check.ok) {
      ctx.error(path, check.message);
      continue;
    }
    if (check.wildcard && (resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') && !hasEndpoints) {
      ctx.error(path, `wildcard host "${raw}" cannot be resolved with resolution ${resolution}; use resolution NONE`);
    }
    if (check.wildcard && !check.host.slice(2).includes('.')) {
      ctx.warn(path, `"${raw}" covers a whole top-level domain`);
    }
    if (hosts.includes(check.host)) ctx.warn(path, `duplicate host "${raw}"`);
    else hosts.push(check.host);
  }
  return hosts;
}

function readAddresses(ctx: ResourceContext, spec: Fields): string[] {
  const out: string[] = [];
  for (const [i, raw] of stringItems(spec.addresses)) {
    const cidr = parseCidr(raw.trim());
    if (cidr === undefined) {
      ctx.error(['spec', 'addresses', i], `"${raw}" is not a valid IP address or CIDR`);
      continue;
    }
    if (cidr.prefix === 0) ctx.warn(['spec', 'addresses', i], `"${raw}" matches every address`);
    if (!out.includes(cidr.text)) out.push(cidr.text);
  }
  return out;
}

function readPorts(ctx: ResourceContext, spec: Fields): ServiceEntryPort[] {
  const items = asArray(spec.ports);
  if (items.length === 0 && !(spec.ports !== undefined && spec.ports !== null && !Array.isArray(spec.ports))) {
    ctx.error(['spec', 'ports'], 'at least one port is required');
  }
  const ports: ServiceEntryPort[] = [];
  const numbers = new Map<number, number>();
  const names = new Map<string, number>();
  items.forEach((item, i) => {
    const port = asObject(item);
    if (port === undefined) return;
    const path = ['spec', 'ports', i];
    let ok = true;
    if (port.number === undefined) {
      ctx.error([...path, 'number'], 'required');
      ok = false;
    }
    const number = readPort(ctx, port.number, [...path, 'number']);
    if (number !== undefined && numbers.has(number)) {
      ctx.error([...path, 'number'], `duplicate port number ${number} (also spec.ports[${numbers.get(number)}])`);
      ok = false;
    } else if (number !== undefined) numbers.set(number, i);
    const protocol = readProtocol(ctx, port.protocol, [...path, 'protocol']);
    const name = asString(port.name);
    if (port.name === undefined) ctx.error([...path, 'name'], 'required');
    else if (name !== undefined && !isDns1123Label(name)) ctx.error([...path, 'name'], `"${name}" must be a DNS-1123 label`);
    else if (name !== undefined && names.has(name)) ctx.error([...path, 'name'], `duplicate port name "${name}" (also spec.ports[${names.get(name)}])`);
    if (name !== undefined) names.set(name, names.get(name) ?? i);
    const targetPort = port.targetPort === undefined ? undefined : readPort(ctx, port.targetPort, [...path, 'targetPort']);
    if (!ok || number === undefined || protocol === undefined || name === undefined) return;
    const entry: ServiceEntryPort = { number, protocol, name, source: ctx.position([...path, 'protocol']) };
    if (targetPort !== undefined) entry.targetPort = targetPort;
    ports.push(entry);
  });
  return ports;
}

function readProtocol(ctx: ResourceContext, value: unknown, path: (string | number)[]): PortProtocol | undefined {
  if (value === undefined) {
    ctx.error(path, `required (one of ${PORT_PROTOCOLS.join(', ')})`);
    return undefined;
  }
  const text = asString(value);
  if (text === undefined) return undefined;
  const protocol = PORT_PROTOCOLS.find((p) => p === text.toUpperCase());
  if (protocol === undefined) ctx.error(path, `"${text}" must be one of ${PORT_PROTOCOLS.join(', ')}`);
  return protocol;
}

function readEndpoints(ctx: ResourceContext, spec: Fields, resolution: Resolution, resolutionValid: boolean): ServiceEntryEndpoint[] {
  const endpoints: ServiceEntryEndpoint[] = [];
  asArray(spec.endpoints).forEach((item, i) => {
    const endpoint = asObject(item);
    if (endpoint === undefined) return;
    const path = ['spec', 'endpoints', i];
    const address = asString(endpoint.address);
    if (address === undefined) {
      if (endpoint.address === undefined) ctx.error([...path, 'address'], 'required');
      return;
    }
    if (resolution === 'STATIC' && isIP(address) === 0) {
      ctx.error([...path, 'address'], `"${address}" must be an IP address with resolution STATIC`);
      return;
    }
    if (resolution !== 'STATIC' && isIP(address) === 0 && !checkHostPattern(address).ok) {
      ctx.error([...path, 'address'], `"${address}" is neither an IP address nor a DNS name`);
      return;
    }
    const ports: Record<string, number> = {};
    for (const [name, value] of Object.entries(asObject(endpoint.ports) ?? {})) {
      const n = asInteger(value);
      if (n !== undefined && readPort(ctx, n, [...path, 'ports', name]) !== undefined) ports[name] = n;
    }
    endpoints.push({ address, ports });
  });
  if (resolution === 'STATIC' && asArray(spec.endpoints).length === 0) {
    ctx.error(['spec', 'resolution'], 'resolution STATIC requires spec.endpoints');
  }
  if (resolution === 'NONE' && resolutionValid && endpoints.length > 0) {
    ctx.warn(['spec', 'endpoints'], 'endpoints are not used with resolution NONE: connections go to the address the client dialled', 'key');
  }
  return endpoints;
}
