import { DNS_PORT, type InitOptions } from './options.ts';

/**
 * The one list of rules egressd puts in a pod's network namespace, per IP
 * family. Everything else (install text, cleanup text, docs, golden files) is
 * rendered from it, so the install and its undo cannot drift apart.
 */
export type Family = 'ipv4' | 'ipv6';
export type Table = 'nat' | 'filter';

export interface Chain {
  table: Table;
  name: string;
}

export interface Rule {
  table: Table;
  chain: string;
  /** iptables arguments after `-A CHAIN`, one token each (no shell quoting needed: none has spaces). */
  spec: readonly string[];
}

export interface RuleSet {
  family: Family;
  /** Own chains in creation order. */
  chains: readonly Chain[];
  /** Rules in the order they are appended. */
  rules: readonly Rule[];
}

/** Every chain egressd owns starts with this; cleanup and re-install find leftovers by it. */
export const CHAIN_PREFIX = 'EGRESSD_';

export const CHAINS = {
  /** nat: decides, for TCP and DNS, what goes to the agent. */
  output: 'EGRESSD_OUTPUT',
  /** nat: TCP to the agent's outbound port. */
  redirect: 'EGRESSD_REDIRECT',
  /** nat: DNS (UDP and TCP) to the agent's DNS port. */
  dns: 'EGRESSD_DNS',
  /** filter: nothing leaves the pod around the agent. */
  guard: 'EGRESSD_GUARD',
  /** filter: what happens to UDP that is not DNS (QUIC). */
  udp: 'EGRESSD_UDP',
} as const;

const LOOPBACK: Record<Family, string> = { ipv4: '127.0.0.0/8', ipv6: '::1/128' };
const NDP_TYPES = ['router-solicitation', 'neighbour-solicitation', 'neighbour-advertisement', '143'] as const;
const PORT_UNREACHABLE: Record<Family, string> = { ipv4: 'icmp-port-unreachable', ipv6: 'icmp6-port-unreachable' };

function rule(table: Table, chain: string, ...spec: string[]): Rule {
  return { table, chain, spec };
}

/** Matches for traffic egressd never touches because of who sends it. */
function trustedOwners(o: InitOptions): string[][] {
  const owners = [['-m', 'owner', '--uid-owner', String(o.agentUid)]];
  if (o.agentGid !== undefined) owners.push(['-m', 'owner', '--gid-owner', String(o.agentGid)]);
  for (const uid of o.excludeUids) owners.push(['-m', 'owner', '--uid-owner', String(uid)]);
  return owners;
}

function natRules(o: InitOptions, family: Family): Rule[] {
  const out = (...spec: string[]): Rule => rule('nat', CHAINS.output, ...spec);
  const rules: Rule[] = [rule('nat', 'OUTPUT', '-p', 'tcp', '-j', CHAINS.output)];
  if (o.redirectDns) rules.push(rule('nat', 'OUTPUT', '-p', 'udp', '--dport', String(DNS_PORT), '-j', CHAINS.output));
  for (const owner of trustedOwners(o)) rules.push(out(...owner, '-j', 'RETURN'));
  rules.push(out('-d', LOOPBACK[family], '-j', 'RETURN'));
  // The pod's own addresses route over lo too: such traffic never leaves the pod.
  rules.push(out('-o', 'lo', '-j', 'RETURN'));
  // DNS is decided before the exclusions: the agent learns names from it, so excluding
  // the cluster's CIDR must not blind it. Excluded UIDs above still bypass it.
  if (o.redirectDns) {
    rules.push(out('-p', 'udp', '--dport', String(DNS_PORT), '-j', CHAINS.dns));
    rules.push(out('-p', 'tcp', '--dport', String(DNS_PORT), '-j', CHAINS.dns));
  } else {
    rules.push(out('-p', 'tcp', '--dport', String(DNS_PORT), '-j', 'RETURN'));
  }
  for (const cidr of o.excludeCidrs[family]) rules.push(out('-d', cidr, '-j', 'RETURN'));
  for (const port of o.excludePorts) rules.push(out('-p', 'tcp', '--dport', String(port), '-j', 'RETURN'));
  rules.push(out('-p', 'tcp', '-j', CHAINS.redirect));
  rules.push(rule('nat', CHAINS.redirect, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(o.outboundPort)));
  if (o.redirectDns) {
    rules.push(rule('nat', CHAINS.dns, '-p', 'udp', '-j', 'REDIRECT', '--to-ports', String(o.dnsPort)));
    rules.push(rule('nat', CHAINS.dns, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(o.dnsPort)));
  }
  return rules;
}

function filterRules(o: InitOptions, family: Family, intercept: boolean): Rule[] {
  const guard = (...spec: string[]): Rule => rule('filter', CHAINS.guard, ...spec);
  const rules: Rule[] = [rule('filter', 'OUTPUT', '-j', CHAINS.guard)];
  // Redirected traffic: REDIRECT rewrote the destination to loopback. (`-o` still
  // names the device routed to before the rewrite, so it cannot tell.)
  rules.push(guard('-d', LOOPBACK[family], '-j', 'RETURN'));
  // The pod's own addresses.
  rules.push(guard('-o', 'lo', '-j', 'RETURN'));
  // Packets of connections already let through, and answers to connections from
  // outside (the pod's own servers): nat only ever sees a connection's first packet.
  rules.push(guard('-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'RETURN'));
  // Neighbour discovery and multicast listener reports come from kernel sockets no
  // owner match can see; without them IPv6 stops working for the agent too. They
  // stay on the link.
  if (family === 'ipv6') {
    for (const type of NDP_TYPES) rules.push(guard('-p', 'ipv6-icmp', '--icmpv6-type', type, '-j', 'RETURN'));
  }
  for (const owner of trustedOwners(o)) rules.push(guard(...owner, '-j', 'RETURN'));
  for (const cidr of o.excludeCidrs[family]) rules.push(guard('-d', cidr, '-j', 'RETURN'));
  const letThrough = [...o.excludePorts, ...(o.redirectDns ? [] : [DNS_PORT])];
  for (const port of letThrough) {
    rules.push(guard('-p', 'tcp', '--dport', String(port), '-j', 'RETURN'));
    rules.push(guard('-p', 'udp', '--dport', String(port), '-j', 'RETURN'));
  }
  if (intercept) {
    // TCP here escaped the redirect: conntrack marked it INVALID (a stray segment of a
    // redirected connection, which must neither leave nor reset it), or the nat rules are gone.
    rules.push(guard('-p', 'tcp', '-m', 'conntrack', '--ctstate', 'INVALID', '-j', 'DROP'));
    rules.push(guard('-p', 'tcp', '-j', 'REJECT', '--reject-with', 'tcp-reset'));
    rules.push(guard('-p', 'udp', '-g', CHAINS.udp));
  }
  // Whatever is left (ICMP, SCTP, raw IP, or any IPv6 when it is not intercepted) would bypass the agent.
  rules.push(guard('-j', 'REJECT', '--reject-with', PORT_UNREACHABLE[family]));
  if (intercept) {
    // Reached by goto, so RETURN here means "allowed" (back to OUTPUT's policy), not "back to the guard".
    rules.push(
      o.rejectUdp
        ? rule('filter', CHAINS.udp, '-j', 'REJECT', '--reject-with', PORT_UNREACHABLE[family])
        : rule('filter', CHAINS.udp, '-j', 'RETURN'),
    );
  }
  return rules;
}

/** The rules for one family. IPv6 is intercepted like IPv4, or (ipv6: false) only guarded. */
export function buildRules(options: InitOptions, family: Family): RuleSet {
  const intercept = family === 'ipv4' || options.ipv6;
  const chains: Chain[] = [];
  const rules: Rule[] = [];
  if (intercept) {
    chains.push({ table: 'nat', name: CHAINS.output }, { table: 'nat', name: CHAINS.redirect });
    if (options.redirectDns) chains.push({ table: 'nat', name: CHAINS.dns });
    rules.push(...natRules(options, family));
  }
  chains.push({ table: 'filter', name: CHAINS.guard });
  if (intercept) chains.push({ table: 'filter', name: CHAINS.udp });
  rules.push(...filterRules(options, family, intercept));
  return { family, chains, rules };
}
