import type { PortProtocol, PolicyMode } from './decision.ts';
import type { Problem, SourcePosition } from './problem.ts';

/**
 * The allowlist after loading and validation: plain, frozen data in which
 * every name is normalized (lower case, punycode, no trailing dot) and every
 * default is filled in. Only resources without errors make it here.
 */

export type Resolution = 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN';
export type TlsMode = 'DISABLE' | 'SIMPLE' | 'MUTUAL';

export interface ResourceMeta {
  kind: 'ServiceEntry' | 'DestinationRule' | 'Sidecar';
  apiVersion: string;
  namespace: string;
  name: string;
  labels: Readonly<Record<string, string>>;
  /** `Kind/namespace/name`. */
  id: string;
  /** Where the resource starts. */
  source: SourcePosition;
}

export interface ServiceEntryPort {
  number: number;
  protocol: PortProtocol;
  name: string;
  targetPort?: number;
  /** Where the port's protocol is written, for conflicts found across resources. */
  source: SourcePosition;
}

export interface ServiceEntryEndpoint {
  address: string;
  /** Port name -> port number on this endpoint. */
  ports: Readonly<Record<string, number>>;
}

export interface ServiceEntryResource extends ResourceMeta {
  kind: 'ServiceEntry';
  /** Exact FQDNs and `*.suffix` wildcards, normalized. */
  hosts: readonly string[];
  /** IPs and CIDRs as written (validated). */
  addresses: readonly string[];
  ports: readonly ServiceEntryPort[];
  location: 'MESH_EXTERNAL' | 'MESH_INTERNAL';
  resolution: Resolution;
  endpoints: readonly ServiceEntryEndpoint[];
  /** `.` is kept as written; `*` when the field is absent. */
  exportTo: readonly string[];
  workloadSelector?: Readonly<Record<string, string>>;
  subjectAltNames: readonly string[];
}

export interface ClientTlsSettings {
  mode: TlsMode;
  sni?: string;
  subjectAltNames?: readonly string[];
  caCertificates?: string;
  credentialName?: string;
  insecureSkipVerify?: boolean;
}

export interface PortTls {
  port: number;
  tls: ClientTlsSettings;
}

export interface DestinationRuleResource extends ResourceMeta {
  kind: 'DestinationRule';
  /** Normalized; may be a `*.suffix` wildcard. */
  host: string;
  tls?: ClientTlsSettings;
  /** TLS settings that replace `tls` on one port. */
  portTls: readonly PortTls[];
  exportTo: readonly string[];
  /** Where `spec.host` is written. */
  hostSource: SourcePosition;
}

export interface SidecarEgressHost {
  /** `*`, `.`, `~` or a namespace name, as written. */
  namespace: string;
  /** `*`, an exact FQDN or a `*.suffix` wildcard, normalized. */
  host: string;
}

export interface SidecarResource extends ResourceMeta {
  kind: 'Sidecar';
  workloadSelector?: Readonly<Record<string, string>>;
  /** Undefined when the Sidecar has no `egress`: every exported ServiceEntry stays visible. */
  egressHosts?: readonly SidecarEgressHost[];
  /** Own mode (REPORT when labelled `egressd.io/mode: report`); undefined inherits. */
  mode?: PolicyMode;
}

export type PolicyResource = ServiceEntryResource | DestinationRuleResource | SidecarResource;

export interface LoadOptions {
  /** Namespace of resources that have no `metadata.namespace`; default `default`. */
  defaultNamespace?: string;
  /** Namespace whose namespace-wide Sidecar is the mesh default; default `istio-system`. */
  rootNamespace?: string;
}

export interface LoadedConfig {
  /** Files read, in load order. */
  files: readonly string[];
  errors: readonly Problem[];
  warnings: readonly Problem[];
  /** Skipped documents (other kinds), empty directories and the like. */
  notices: readonly Problem[];
  serviceEntries: readonly ServiceEntryResource[];
  destinationRules: readonly DestinationRuleResource[];
  sidecars: readonly SidecarResource[];
  defaultNamespace: string;
  rootNamespace: string;
}

export const DEFAULT_NAMESPACE = 'default';
export const DEFAULT_ROOT_NAMESPACE = 'istio-system';
/** Label on a Sidecar that selects egressd's REPORT mode. */
export const MODE_LABEL = 'egressd.io/mode';
