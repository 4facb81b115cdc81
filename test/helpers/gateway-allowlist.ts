/**
 * The allowlist entry the gateway tests share: api.example.test on 443
 * (HTTPS, passed through) and 80 (plain HTTP the gateway originates as
 * HTTPS to 443, by the DestinationRule). Tests differ only in how the name
 * resolves, which addresses are listed and what more the entry carries, so
 * those are the options; everything else stays one copy of the YAML.
 */

export interface ApiEntryOptions {
  /** Default `api`: the ServiceEntry's name, and `<name>-tls` the DestinationRule's. */
  name?: string;
  /** `exportTo` of both resources, as written in YAML (e.g. `"*"`, `team`); absent: Istio's default. */
  exportTo?: string;
  /** File with the destination's CA root (DestinationRule `caCertificates`). */
  caCertificates: string;
  /** Default `[api.example.test]`; the first is the DestinationRule's host. */
  hosts?: string[];
  /** `addresses`, when the entry lists some (how a gateway may dial a private address). */
  addresses?: string[];
  /** Default DNS. */
  resolution?: 'DNS' | 'STATIC';
  /** Ports besides https (443) and http (80 -> 443). */
  morePorts?: { number: number; name: string; protocol: string }[];
  /** STATIC endpoints. */
  endpoints?: { address: string; ports: Record<string, number> }[];
  /** `sni` for the originated TLS, when the rule names it. */
  sni?: string;
}

/** ServiceEntry `egress/<name>` and DestinationRule `egress/<name>-tls`, as two YAML documents (no leading or trailing `---`). */
export function apiEntry(options: ApiEntryOptions): string {
  const name = options.name ?? 'api';
  const hosts = options.hosts ?? ['api.example.test'];
  const exportTo = options.exportTo === undefined ? '' : `  exportTo: [${options.exportTo}]\n`;
  const ports = [
    '    - { number: 443, name: https, protocol: HTTPS }',
    '    - { number: 80, name: http, protocol: HTTP, targetPort: 443 }',
    ...(options.morePorts ?? []).map((p) => `    - { number: ${p.number}, name: ${p.name}, protocol: ${p.protocol} }`),
  ];
  const addresses = options.addresses ? `  addresses: ${JSON.stringify(options.addresses)}\n` : '';
  const endpoints = options.endpoints ? `  endpoints: ${JSON.stringify(options.endpoints)}\n` : '';
  const sni = options.sni ? `sni: ${options.sni}, ` : '';
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: egress }
spec:
  hosts: [${hosts.join(', ')}]
${exportTo}${addresses}  location: MESH_EXTERNAL
  resolution: ${options.resolution ?? 'DNS'}
  ports:
${ports.join('\n')}
${endpoints}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}-tls, namespace: egress }
spec:
  host: ${hosts[0]}
${exportTo}  trafficPolicy:
    portLevelSettings:
      - port: { number: 80 }
        tls: { mode: SIMPLE, ${sni}caCertificates: ${options.caCertificates} }
`;
}
