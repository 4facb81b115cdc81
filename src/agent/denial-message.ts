import { isIP } from 'node:net';
import { formatHostPort } from '../core/net.ts';

/**
 * What a refused client reads (HTTP 403 body): which destination was refused
 * and why, how to check a change before applying it, and the ServiceEntry
 * that would allow it. Written for the developer who hit it, not for a log.
 */
export interface DenialFacts {
  host: string;
  port: number;
  reason: string;
  detail?: string;
  namespace: string;
  configDir: string;
}

/** The host is listed; the address is the problem, and a new ServiceEntry would not help. */
const MISMATCH = [
  'The ServiceEntry that lists this host has resolution NONE: the connection would go to the IP',
  'the application dialled, and that IP is not one the host resolves to. Use resolution DNS (the',
  'agent then connects to the host itself), or list the IP in the ServiceEntry\'s addresses.',
];

export function denialMessage(f: DenialFacts): string {
  const target = formatHostPort(f.host, f.port);
  const lines = [
    `egressd: connection to ${target} denied (${f.reason}${f.detail ? `: ${f.detail}` : ''}).`,
    '',
    'Check what the allowlist says about it:',
    `  egressctl check --config ${f.configDir} --namespace ${f.namespace} ${target}`,
    '',
    ...(f.reason === 'destination_mismatch' ? MISMATCH : ['To allow it, add a ServiceEntry like this one to the allowlist:', '', ...serviceEntrySnippet(f.host, f.port, f.namespace).map((l) => `  ${l}`)]),
    '',
  ];
  return lines.join('\n');
}

function serviceEntrySnippet(host: string, port: number, namespace: string): string[] {
  const ip = isIP(host) !== 0;
  const protocol = port === 443 ? 'TLS' : port === 80 ? 'HTTP' : 'TCP';
  const name = ip ? `ip-${host.replace(/[.:]/g, '-')}` : host.replace(/^\*\./, 'wildcard.').replace(/[^a-z0-9-]/g, '-');
  return [
    'apiVersion: networking.istio.io/v1',
    'kind: ServiceEntry',
    'metadata:',
    `  name: ${name.slice(0, 63).replace(/-+$/, '')}`,
    `  namespace: ${namespace}`,
    'spec:',
    `  hosts: ["${ip ? `${name}.external` : host}"]`,
    ...(ip ? [`  addresses: ["${host}/${isIP(host) === 4 ? 32 : 128}"]`] : []),
    '  location: MESH_EXTERNAL',
    `  resolution: ${ip ? 'STATIC' : 'DNS'}`,
    '  ports:',
    `    - number: ${port}`,
    `      name: ${protocol.toLowerCase()}-${port}`,
    `      protocol: ${protocol}`,
    ...(ip ? ['  endpoints:', `    - address: "${host}"`] : []),
  ];
}
