import { parseCidr } from '../policy/cidr.ts';
import type { Endpoint } from './connect-to.ts';
import type { Verdict } from './decide.ts';

/**
 * Where an allowed connection goes, as Istio's sidecar would send it: by
 * the matched ServiceEntry's resolution, not by whatever IP the client
 * dialled. Otherwise a client could reach any IP by naming a listed host in
 * its SNI or Host header.
 *
 *   DNS, DNS_ROUND_ROBIN  the endpoints if the rule lists some, else the host name (the agent resolves it)
 *   STATIC                the endpoints
 *   NONE                  the IP the client dialled (passthrough), which must then be one of the
 *                         name's addresses or in the rule's `addresses` (the `verify` step)
 *
 * In mode REPORT a failed check lets the connection through, marked
 * would_deny. A rule that matched by address (the dialled IP is in its `addresses`),
 * and connections no rule matched (ALLOW_ANY, REPORT), go where the client
 * asked. The direct route cannot originate TLS: when the decision asks for
 * origination, the client's bytes go to the port the client asked for.
 */

export interface UpstreamPlan {
  /** What the route dials, in order: IPs, or names it resolves. */
  endpoints: Endpoint[];
  /** Before dialling, `address` must be an address of `name` or within `listed`, else `destination_mismatch`. */
  verify?: { name: string; address: string; listed: readonly string[] };
}

/**
 * `requested`: the decided host and the port the client asked for.
 * `dialled`: the original destination (transparent path), absent when the
 * client named the destination to a proxy.
 */
export function planUpstream(verdict: Verdict, requested: Endpoint, dialled?: { address: string; port: number }): UpstreamPlan {
  const asked: Endpoint[] = [dialled ? { host: dialled.address, port: dialled.port } : requested];
  const decision = verdict.decision;
  const upstream = decision?.upstream;
  if (decision === undefined || upstream === undefined) return { endpoints: asked };
  const byAddress = verdict.hostSource === 'ip' || (decision.matchedHost !== undefined && parseCidr(decision.matchedHost) !== undefined);
  const originates = decision.tls !== undefined;
  const endpoints = (upstream.endpoints ?? []).map((e) => ({ host: e.address, port: originates ? requested.port : e.port }));
  const port = originates ? requested.port : upstream.port;
  switch (upstream.resolution) {
    case 'STATIC':
      return { endpoints };
    case 'DNS':
    case 'DNS_ROUND_ROBIN':
      if (endpoints.length > 0) return { endpoints };
      return { endpoints: byAddress ? asked : [{ host: verdict.host, port }] };
    case 'NONE':
      // A name the DNS proxy attributed to this very IP needs no second look.
      // ALLOW_ANY would let the IP through anyway.
      if (dialled === undefined || byAddress || verdict.hostSource === 'dns' || decision.mode === 'ALLOW_ANY') return { endpoints: asked };
      return { endpoints: asked, verify: { name: verdict.host, address: dialled.address, listed: upstream.addresses ?? [] } };
  }
}
