import { isIP } from 'node:net';
import { EgressdError } from './errors.ts';
import { normalizeHost } from './net.ts';

/**
 * `--resolve`, curl's option, for the agent and the gateway: a name answered
 * without DNS, for tests, labs, demos and names only the workload knows.
 * `host:port:address` applies to that port (curl's form), `host:address` to
 * every port. Several entries for one name give several addresses, tried in
 * their order. An IPv6 address may be bracketed, and must be when the port
 * is left out and the address could be read as `port:address`
 * (`host:[2001:db8::1]`).
 */

export interface ResolveOverride {
  /** Normalized (lower case, no trailing dot). */
  host: string;
  /** Absent: every port. */
  port?: number;
  address: string;
}

const WITH_PORT = /^([^:\s[\]]+):(\d{1,5}):(.+)$/;
const WITHOUT_PORT = /^([^:\s[\]]+):(.+)$/;

export function parseResolveOverride(text: string): ResolveOverride {
  const trimmed = text.trim();
  const withPort = WITH_PORT.exec(trimmed);
  const parsed = withPort ? entry(withPort[1]!, withPort[3]!, Number(withPort[2])) : undefined;
  if (parsed) return parsed;
  const withoutPort = WITHOUT_PORT.exec(trimmed);
  const bare = withoutPort ? entry(withoutPort[1]!, withoutPort[2]!) : undefined;
  if (bare) return bare;
  throw new EgressdError(
    'EGRESSD_ERR_USAGE',
    `--resolve "${text}": expected host:port:address (or host:address for every port) with an IP address, e.g. api.example.test:443:127.0.0.1`,
  );
}

function entry(hostText: string, addressText: string, port?: number): ResolveOverride | undefined {
  const host = normalizeHost(hostText);
  const address = addressText.replace(/^\[(.*)\]$/, '$1');
  if (host === '' || host.startsWith('*.') || isIP(address) === 0) return undefined;
  if (port === undefined) return { host, address };
  return port >= 1 && port <= 65535 ? { host, port, address } : undefined;
}

/**
 * The addresses the overrides give `host` (on `port` when known): entries
 * for that port, else those for every port; undefined when none apply and
 * the name is for the real resolver. Without a port, every entry of the host
 * applies (the gateway resolves names, not name-and-port pairs).
 */
export function overrideTable(entries: readonly ResolveOverride[]): (host: string, port?: number) => string[] | undefined {
  const byHost = new Map<string, ResolveOverride[]>();
  for (const e of entries) byHost.set(e.host, [...(byHost.get(e.host) ?? []), e]);
  return (host, port) => {
    const list = byHost.get(normalizeHost(host));
    if (!list) return undefined;
    if (port === undefined) return list.map((e) => e.address);
    const exact = list.filter((e) => e.port === port);
    const any = exact.length > 0 ? exact : list.filter((e) => e.port === undefined);
    return any.length > 0 ? any.map((e) => e.address) : undefined;
  };
}
