import type { FieldPath } from './problem.ts';

/**
 * Every field of the three Istio kinds egressd reads, and whether egressd
 * acts on it. A field egressd ignores draws a warning that names it; a field
 * Istio does not have is an error (Kubernetes itself rejects unknown fields).
 * docs/allowlist.md lists the same fields; a test keeps the two in step.
 */

export type Support = 'implemented' | 'ignored';

export interface FieldSpec {
  support: Support;
  /** Why it is ignored, or what to use instead; shown in the warning. */
  note?: string;
  /** Sub-fields of an object. */
  fields?: FieldTable;
  /** Fields of each element of an array of objects. */
  each?: FieldTable;
}

export type FieldTable = Readonly<Record<string, FieldSpec>>;

const done: FieldSpec = { support: 'implemented' };
const ignored = (note?: string): FieldSpec => (note === undefined ? { support: 'ignored' } : { support: 'ignored', note });

const workloadSelector: FieldSpec = { support: 'implemented', fields: { labels: done } };

export const SERVICE_ENTRY_SPEC: FieldTable = {
  hosts: done,
  addresses: done,
  ports: { support: 'implemented', each: { number: done, protocol: done, name: done, targetPort: done } },
  location: done,
  resolution: done,
  endpoints: {
    support: 'implemented',
    each: {
      address: done,
      ports: done,
      labels: ignored('endpoint labels select no subset in egressd'),
      network: ignored('egressd has no multi-network routing'),
      locality: ignored('egressd does no locality-aware load balancing'),
      weight: ignored('endpoints are tried in order'),
      serviceAccount: ignored('egressd does not verify upstream workload identity'),
    },
  },
  workloadSelector,
  exportTo: done,
  subjectAltNames: done,
};

const clientTls: FieldSpec = {
  support: 'implemented',
  fields: {
    mode: done,
    sni: done,
    subjectAltNames: done,
    caCertificates: done,
    credentialName: done,
    insecureSkipVerify: done,
    clientCertificate: ignored('use credentialName for the client certificate'),
    privateKey: ignored('use credentialName for the client key'),
    caCrl: ignored('certificate revocation lists are not checked'),
  },
};

const trafficTuning = {
  loadBalancer: ignored('egressd does its own connection handling'),
  connectionPool: ignored('egressd does its own connection handling'),
  outlierDetection: ignored('egressd does no outlier detection'),
};

export const DESTINATION_RULE_SPEC: FieldTable = {
  host: done,
  trafficPolicy: {
    support: 'implemented',
    fields: {
      tls: clientTls,
      portLevelSettings: {
        support: 'implemented',
        each: { port: { support: 'implemented', fields: { number: done } }, tls: clientTls, ...trafficTuning },
      },
      ...trafficTuning,
      tunnel: ignored('egressd does not tunnel to upstreams'),
      proxyProtocol: ignored('egressd sends no PROXY protocol header'),
    },
  },
  subsets: ignored('egressd routes to the host, not to subsets'),
  exportTo: done,
  workloadSelector: ignored('a DestinationRule applies to every workload it is exported to'),
};

export const SIDECAR_SPEC: FieldTable = {
  workloadSelector,
  egress: {
    support: 'implemented',
    each: {
      hosts: done,
      port: ignored('egress hosts apply to every port'),
      bind: ignored('egressd listeners are fixed'),
      captureMode: ignored('capture is set by the egressd init container'),
    },
  },
  outboundTrafficPolicy: {
    support: 'implemented',
    fields: { mode: done, egressProxy: ignored('egressd always uses its own egress gateway') },
  },
  ingress: ignored('egressd controls outbound traffic only'),
  inboundConnectionPool: ignored('egressd controls outbound traffic only'),
};

export const SPEC_FIELDS = {
  ServiceEntry: SERVICE_ENTRY_SPEC,
  DestinationRule: DESTINATION_RULE_SPEC,
  Sidecar: SIDECAR_SPEC,
} as const;

/** Top-level fields of a resource; `metadata` is checked by the schema, not walked. */
export const TOP_LEVEL: ReadonlySet<string> = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'status']);

export interface FieldFinding {
  path: FieldPath;
  kind: 'unknown' | 'ignored';
  note?: string;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Unknown and ignored fields under `value`, depth first. Wrongly typed values are left to the schema check. */
export function findUnsupportedFields(value: unknown, table: FieldTable, path: FieldPath, out: FieldFinding[] = []): FieldFinding[] {
  if (!isObject(value)) return out;
  for (const [key, child] of Object.entries(value)) {
    const spec = Object.hasOwn(table, key) ? table[key] : undefined;
    const at = [...path, key];
    if (spec === undefined) out.push({ path: at, kind: 'unknown' });
    else if (spec.support === 'ignored') out.push(spec.note === undefined ? { path: at, kind: 'ignored' } : { path: at, kind: 'ignored', note: spec.note });
    else if (spec.fields) findUnsupportedFields(child, spec.fields, at, out);
    else if (spec.each && Array.isArray(child)) child.forEach((item, i) => findUnsupportedFields(item, spec.each!, [...at, i], out));
  }
  return out;
}
