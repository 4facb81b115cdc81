import { isIP } from 'node:net';
import { parseCidr, type Cidr } from '../core/ip-ranges.ts';
import type { PolicySnapshot as FullSnapshot } from '../policy/config-source.ts';
import type { Decision, DecideInput } from '../policy/decision.ts';
import type { LoadedConfig } from '../policy/resources.ts';
import type { TunnelRequest } from '../tunnel/protocol.ts';
import type { CallerIdentity } from './identity.ts';

/**
 * The gateway's second decision, with what it knows itself: the caller's
 * namespace from its certificate (not from the agent), and the destination
 * the tunnel names. Workload labels are unknown here, so a ServiceEntry or
 * Sidecar with a workloadSelector is judged as for an unlabelled workload
 * (fail closed; see docs/gateway.md).
 */

/** What the gateway needs from a config snapshot (src/policy/config-source.ts): the compiled allowlist and the resources it came from. */
export type PolicySnapshot = Pick<FullSnapshot, 'policy' | 'config'>;

/** Label on a ServiceEntry or DestinationRule that turns x-forwarded-client-cert off for its hosts. */
export const XFCC_LABEL = 'egressd.io/xfcc';

export interface Authorization {
  decision: Decision;
  /** Addresses an operator named explicitly for this destination: the only way into forbidden ranges. */
  listed: Cidr[];
  /** Whether originated requests carry x-forwarded-client-cert. */
  xfcc: boolean;
}

export function authorize(snapshot: PolicySnapshot, request: TunnelRequest, identity: CallerIdentity, extraListed: readonly Cidr[]): Authorization {
  const input: DecideInput = {
    host: request.host,
    port: request.port,
    protocol: request.protocol === 'tls' ? 'TLS' : request.protocol === 'http' ? 'HTTP' : 'TCP',
    sourceNamespace: identity.namespace,
  };
  // The IP the application dialled counts only when nothing named the destination.
  if (isIP(request.host)) input.address = request.host;
  const decision = snapshot.policy.decide(input);
  return { decision, listed: [...listedFor(snapshot.config, decision), ...extraListed], xfcc: xfccWanted(snapshot.config, decision) };
}

/** The matched ServiceEntry's `addresses` and STATIC endpoint addresses. */
function listedFor(config: LoadedConfig, decision: Decision): Cidr[] {
  if (!decision.allow || decision.rule === undefined) return [];
  const entry = config.serviceEntries.find((e) => e.id === decision.rule);
  const texts = [...(entry?.addresses ?? []), ...(decision.upstream?.endpoints ?? []).map((e) => e.address)];
  return texts.map((t) => parseCidr(t)).filter((c): c is Cidr => c !== undefined);
}

function xfccWanted(config: LoadedConfig, decision: Decision): boolean {
  const off = (labels: Readonly<Record<string, string>> | undefined): boolean => labels?.[XFCC_LABEL]?.toLowerCase() === 'false';
  const entry = config.serviceEntries.find((e) => e.id === decision.rule);
  const rule = decision.tls ? config.destinationRules.find((d) => d.id === decision.tls!.source) : undefined;
  return !off(entry?.labels) && !off(rule?.labels);
}
