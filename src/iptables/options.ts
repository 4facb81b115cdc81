import { isIP } from 'node:net';
import { EgressdError } from '../core/errors.ts';
import type { OptionSpecs, OptionValues } from '../core/options.ts';

/**
 * What `egressd init` is told: which traffic the agent owns and where to send
 * the rest. Validated once into a frozen value; the rule builder never sees
 * raw flags.
 */
export interface InitOptions {
  /** Traffic from this UID (the agent's) is never intercepted. */
  agentUid: number;
  /** Optional GID whose traffic is never intercepted either (unset: only the UID counts). */
  agentGid: number | undefined;
  /** Agent's transparent-proxy port that outbound TCP is redirected to. */
  outboundPort: number;
  /** Agent's DNS port that UDP and TCP port 53 are redirected to. */
  dnsPort: number;
  /** Destinations egressd leaves alone (all protocols), split per family. */
  excludeCidrs: { ipv4: readonly string[]; ipv6: readonly string[] };
  /** Destination ports egressd leaves alone (TCP and UDP). */
  excludePorts: readonly number[];
  /** Further UIDs (other sidecars) whose traffic is left alone like the agent's. */
  excludeUids: readonly number[];
  /** true: IPv6 is intercepted like IPv4; false: IPv6 from non-agent UIDs is rejected. */
  ipv6: boolean;
  /** Reject outbound UDP other than DNS (QUIC above all) so applications fall back to TCP. */
  rejectUdp: boolean;
  /** Redirect DNS to the agent's DNS port; false lets DNS through untouched. */
  redirectDns: boolean;
}

/** Environment variables an init container is configured with; shared with the agent where the meaning is the same. */
export const INIT_ENV = {
  agentUid: 'EGRESSD_AGENT_UID',
  agentGid: 'EGRESSD_AGENT_GID',
  outboundPort: 'EGRESSD_OUTBOUND_PORT',
  dnsPort: 'EGRESSD_DNS_PORT',
  excludeCidrs: 'EGRESSD_EXCLUDE_CIDRS',
  excludePorts: 'EGRESSD_EXCLUDE_PORTS',
  excludeUids: 'EGRESSD_EXCLUDE_UIDS',
  ipv6: 'EGRESSD_IPV6',
  rejectUdp: 'EGRESSD_REJECT_UDP',
  redirectDns: 'EGRESSD_REDIRECT_DNS',
  backend: 'EGRESSD_IPTABLES_BACKEND',
} as const;

export const DEFAULT_AGENT_UID = 1337;
export const DEFAULT_OUTBOUND_PORT = 15001;
export const DEFAULT_DNS_PORT = 15053;
export const DNS_PORT = 53;

/** Which iptables binaries to call: the distribution default, or one backend explicitly. */
export const BACKENDS = ['default', 'nft', 'legacy'] as const;
export type Backend = (typeof BACKENDS)[number];

export const INIT_OPTION_SPECS = {
  'agent-uid': { type: 'integer', env: INIT_ENV.agentUid, default: DEFAULT_AGENT_UID, description: 'UID the agent runs as; its traffic is never intercepted' },
  'agent-gid': { type: 'integer', env: INIT_ENV.agentGid, description: 'GID whose traffic is never intercepted either (unset: only the UID)' },
  'outbound-port': { type: 'integer', env: INIT_ENV.outboundPort, default: DEFAULT_OUTBOUND_PORT, description: "agent's transparent proxy port; outbound TCP is redirected there" },
  'dns-port': { type: 'integer', env: INIT_ENV.dnsPort, default: DEFAULT_DNS_PORT, description: "agent's DNS port; UDP and TCP port 53 are redirected there" },
  'exclude-cidrs': { type: 'list', env: INIT_ENV.excludeCidrs, default: [], description: 'comma-separated IPv4/IPv6 CIDRs left alone (all protocols; DNS is still redirected)' },
  'exclude-ports': { type: 'list', env: INIT_ENV.excludePorts, default: [], description: 'comma-separated destination ports left alone (TCP and UDP)' },
  'exclude-uids': { type: 'list', env: INIT_ENV.excludeUids, default: [], description: 'comma-separated UIDs whose traffic is left alone, like the agent' },
  ipv6: { type: 'boolean', env: INIT_ENV.ipv6, default: true, description: 'intercept IPv6 like IPv4; false rejects all IPv6 from non-agent UIDs' },
  'reject-udp': { type: 'boolean', env: INIT_ENV.rejectUdp, default: true, description: 'reject outbound UDP other than DNS (QUIC) so applications fall back to TCP' },
  'redirect-dns': { type: 'boolean', env: INIT_ENV.redirectDns, default: true, description: 'redirect DNS (port 53) to the agent; false lets DNS through' },
  backend: { type: 'string', env: INIT_ENV.backend, default: 'default', description: `iptables binaries to use: ${BACKENDS.join(', ')}` },
  cleanup: { type: 'boolean', default: false, description: 'remove the rules instead of installing them' },
  'dry-run': { type: 'boolean', default: false, description: 'print the iptables-restore input without applying it' },
  help: { type: 'boolean', short: 'h', default: false, description: 'show this help' },
} as const satisfies OptionSpecs;

export type InitFlagValues = OptionValues<typeof INIT_OPTION_SPECS>;

/** `--flag [ENV]`, so a problem names the variable an init container was given. */
function label(name: keyof typeof INIT_OPTION_SPECS): string {
  const env = (INIT_OPTION_SPECS[name] as { env?: string }).env;
  return env ? `--${name} [${env}]` : `--${name}`;
}

function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}

function isId(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xfffffffe;
}

/** A CIDR in canonical iptables form (bare address gets /32 or /128), or undefined when malformed. */
export function parseCidr(text: string): { family: 'ipv4' | 'ipv6'; cidr: string } | undefined {
  const [address = '', prefix, ...rest] = text.split('/');
  const version = isIP(address);
  if (version === 0 || rest.length > 0) return undefined;
  const max = version === 4 ? 32 : 128;
  const bits = prefix === undefined ? max : /^\d{1,3}$/.test(prefix) ? Number(prefix) : NaN;
  if (!(bits >= 0 && bits <= max)) return undefined;
  return { family: version === 4 ? 'ipv4' : 'ipv6', cidr: `${address.toLowerCase()}/${bits}` };
}

/** Turns parsed flags into InitOptions, reporting every bad value at once (EGRESSD_ERR_USAGE). */
export function toInitOptions(flags: InitFlagValues): InitOptions {
  const problems: string[] = [];
  for (const name of ['agent-uid', 'agent-gid'] as const) {
    const v = flags[name];
    if (v !== undefined && !isId(v)) problems.push(`${label(name)}: ${v} is not a valid id`);
  }
  for (const name of ['outbound-port', 'dns-port'] as const) {
    if (!isPort(flags[name])) problems.push(`${label(name)}: ${flags[name]} is not a port (1-65535)`);
  }
  if (flags['outbound-port'] === flags['dns-port']) problems.push(`${label('outbound-port')} and ${label('dns-port')} must differ`);
  const cidrs = { ipv4: [] as string[], ipv6: [] as string[] };
  for (const text of flags['exclude-cidrs']) {
    const parsed = parseCidr(text);
    if (parsed) cidrs[parsed.family].push(parsed.cidr);
    else problems.push(`${label('exclude-cidrs')}: "${text}" is not an IPv4 or IPv6 CIDR`);
  }
  const ports: number[] = [];
  for (const text of flags['exclude-ports']) {
    const n = /^\d+$/.test(text) ? Number(text) : NaN;
    if (isPort(n)) ports.push(n);
    else problems.push(`${label('exclude-ports')}: "${text}" is not a port (1-65535)`);
  }
  if (flags['redirect-dns'] && ports.includes(DNS_PORT)) {
    problems.push(`${label('exclude-ports')}: ${DNS_PORT} conflicts with --redirect-dns; use --redirect-dns=false to let DNS through`);
  }
  const uids: number[] = [];
  for (const text of flags['exclude-uids']) {
    const n = /^\d+$/.test(text) ? Number(text) : NaN;
    if (isId(n)) uids.push(n);
    else problems.push(`${label('exclude-uids')}: "${text}" is not a UID`);
  }
  if (problems.length > 0) {
    throw new EgressdError('EGRESSD_ERR_USAGE', problems.join('; '), { context: { problems } });
  }
  const unique = <T>(xs: T[]): T[] => [...new Set(xs)];
  return Object.freeze({
    agentUid: flags['agent-uid'],
    agentGid: flags['agent-gid'],
    outboundPort: flags['outbound-port'],
    dnsPort: flags['dns-port'],
    excludeCidrs: Object.freeze({ ipv4: Object.freeze(unique(cidrs.ipv4)), ipv6: Object.freeze(unique(cidrs.ipv6)) }),
    excludePorts: Object.freeze(unique(ports)),
    excludeUids: Object.freeze(unique(uids).filter((u) => u !== flags['agent-uid'])),
    ipv6: flags.ipv6,
    rejectUdp: flags['reject-udp'],
    redirectDns: flags['redirect-dns'],
  });
}

export function toBackend(value: string): Backend {
  const backend = BACKENDS.find((b) => b === value);
  if (!backend) {
    throw new EgressdError('EGRESSD_ERR_USAGE', `${label('backend')}: "${value}" is not one of ${BACKENDS.join(', ')}`);
  }
  return backend;
}
