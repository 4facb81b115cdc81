import type { HostSource, RefusalReason } from '../core/audit.ts';
import { normalizeHost } from '../core/net.ts';
import type { Decision, DecideInput } from '../policy/decision.ts';

/**
 * The decide stage: turns what the pipeline learned about a connection into
 * a verdict. The host is the first name seen (CONNECT or URI host, SNI, Host
 * header), else the destination IP; every other name seen must agree with
 * it, so that no header can talk a connection past the allowlist.
 */

/** What the agent needs from the policy core. */
export interface PolicyView {
  decide(input: DecideInput): Decision;
}

export interface NamedHost {
  source: Exclude<HostSource, 'ip'>;
  /** As seen on the wire; normalized here. */
  name: string;
}

export interface DecideFacts {
  /** Names for the destination, most authoritative first. */
  names: readonly NamedHost[];
  port: number;
  /** The IP the client dialled, when known (transparent path, or an IP literal). */
  address?: string;
  /** What was seen on the wire; unknown for a CONNECT before its tunnel carries anything. */
  protocol?: 'TLS' | 'HTTP' | 'TCP';
}

export interface Identity {
  namespace: string;
  labels: Readonly<Record<string, string>>;
  /** The workload's SPIFFE ID, when it holds a certificate (for the audit record; the gateway knows it from the certificate). */
  spiffeId?: string;
}

export interface Verdict {
  allow: boolean;
  /** The policy's reason, or the agent's own when it refused before asking. */
  reason: Decision['reason'] | RefusalReason;
  /** The policy's decision, when it was asked. */
  decision?: Decision;
  host: string;
  hostSource: HostSource;
  /** Why a refusal was made, in words, for the audit record's `error`. */
  detail?: string;
}

export function decide(policy: PolicyView | undefined, facts: DecideFacts, identity: Identity): Verdict {
  const names = facts.names.map((n) => ({ source: n.source, raw: n.name, name: normalizeHost(n.name) }));
  const first = names[0];
  const host = first ? first.name : (facts.address ?? '');
  const hostSource: HostSource = first ? first.source : 'ip';
  const invalid = names.find((n) => n.name === '');
  if (invalid) return refuse('invalid_host', host, hostSource, `${describe(invalid.source)} "${invalid.raw}" is not a valid host name`);
  const other = names.find((n) => n.name !== host);
  if (first && other) {
    return refuse('host_mismatch', host, hostSource, `${describe(other.source)} "${other.name}" disagrees with ${describe(first.source)} "${host}"`);
  }
  if (!policy) return refuse('config_not_loaded', host, hostSource, 'no valid configuration loaded yet');
  if (host === '') return refuse('invalid_host', host, hostSource, 'no host and no destination address');
  const input: DecideInput = {
    host,
    port: facts.port,
    sourceNamespace: identity.namespace,
    workloadLabels: identity.labels,
  };
  if (facts.protocol !== undefined) input.protocol = facts.protocol;
  if (facts.address !== undefined) input.address = facts.address;
  const decision = policy.decide(input);
  return { allow: decision.allow, reason: decision.reason, decision, host, hostSource };
}

function describe(source: HostSource): string {
  switch (source) {
    case 'sni':
      return 'TLS SNI';
    case 'http':
      return 'HTTP host';
    case 'connect':
      return 'CONNECT host';
    case 'ip':
      return 'destination address';
    case 'dns':
      return 'name from DNS';
  }
}

function refuse(reason: RefusalReason, host: string, hostSource: HostSource, detail: string): Verdict {
  return { allow: false, reason, host, hostSource, detail };
}
