import type { PortProtocol } from '../policy/decision.ts';
import type { Identity, PolicyView } from './decide.ts';
import type { Destination } from './outbound.ts';

/**
 * How long the transparent path waits for a client's first bytes, chosen
 * before it waits, the way Istio chooses by protocol declaration: a port the
 * allowlist declares client-first (HTTP, HTTPS, HTTP2, GRPC, TLS) is always
 * inspected, so its client gets the whole sniff timeout to start; a loaded
 * node may deliver a ClientHello after the short peek, and it would then be
 * judged on its IP alone. A port declared TCP or MONGO, or one nothing
 * declares, keeps the short peek: server-first protocols (SMTP, MySQL) wait
 * for no client bytes and must get their banner soon.
 */

/** What the choice needs besides the policy; the Pipeline has these. */
export interface PeekSettings {
  identity: Identity;
  /** The short wait, for server-first or undeclared ports. */
  peekTimeoutMs: number;
  /** The long wait, for ports declared client-first. */
  sniffTimeoutMs: number;
}

/** Port protocols whose client speaks first, so that a silent client is only a slow one. */
const CLIENT_FIRST: ReadonlySet<PortProtocol> = new Set(['HTTP', 'HTTPS', 'HTTP2', 'GRPC', 'TLS']);

/**
 * The wait in milliseconds for a connection dialled to `destination`:
 * `sniffTimeoutMs` when the ServiceEntry port matched by the address (or
 * CIDR), or by `name` (what DNS answered the address for), is declared
 * client-first; else `peekTimeoutMs`. Only a port the policy lets this
 * workload use counts: one it would refuse declares nothing to it.
 */
export function peekWindow(policy: PolicyView | undefined, destination: Destination, name: string | undefined, settings: PeekSettings): number {
  if (policy === undefined) return settings.peekTimeoutMs;
  const clientFirst = (host: string): boolean => {
    const { protocol } = policy.decide({
      host,
      port: destination.port,
      address: destination.address,
      sourceNamespace: settings.identity.namespace,
      workloadLabels: settings.identity.labels,
    });
    return protocol !== undefined && CLIENT_FIRST.has(protocol);
  };
  const hosts = name === undefined ? [destination.address] : [destination.address, name];
  return hosts.some(clientFirst) ? settings.sniffTimeoutMs : settings.peekTimeoutMs;
}
