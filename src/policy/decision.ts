/**
 * The contract between the policy core and everyone who asks it: the agent,
 * the gateway and egressctl. A denial is a value, never an exception.
 */

/** Port protocols of an Istio ServiceEntry. */
export type PortProtocol = 'HTTP' | 'HTTPS' | 'HTTP2' | 'GRPC' | 'TLS' | 'TCP' | 'MONGO';

/** Istio's outboundTrafficPolicy modes plus egressd's own `REPORT` (allow, but mark would_deny). */
export type PolicyMode = 'REGISTRY_ONLY' | 'ALLOW_ANY' | 'REPORT';

export interface DecideInput {
  /** DNS name (from SNI, Host, or DNS attribution) or an IP literal when nothing named the destination. */
  host: string;
  port: number;
  /** What the caller saw on the wire, if known: 'TLS', 'HTTP' or 'TCP'. */
  protocol?: 'TLS' | 'HTTP' | 'TCP';
  /** The IP the application actually dialled, when known; matched against ServiceEntry `addresses`. */
  address?: string;
  sourceNamespace: string;
  workloadLabels?: Readonly<Record<string, string>>;
}

export type DecisionReason =
  /** A ServiceEntry host or address matched, on a listed port, exported to the caller. */
  | 'allowed_by_rule'
  /** No rule matched, and mode is ALLOW_ANY. */
  | 'allow_any'
  /** No ServiceEntry names this host or address. */
  | 'no_matching_rule'
  /** A ServiceEntry names the host, but not this port. */
  | 'port_not_allowed'
  /** A ServiceEntry names the host but is not exported to the caller's namespace. */
  | 'not_exported'
  /** A ServiceEntry names the host but its workloadSelector (or a Sidecar's egress hosts) leaves this workload out. */
  | 'not_selected';

export interface TlsOrigination {
  mode: 'SIMPLE' | 'MUTUAL';
  /** SNI to send; defaults to the host. */
  sni?: string;
  /** Upstream port to dial with TLS (ServiceEntry `targetPort`, or the port itself). */
  port: number;
  subjectAltNames?: string[];
  caCertificates?: string;
  credentialName?: string;
  insecureSkipVerify?: boolean;
  /** `DestinationRule/ns/name` or `ServiceEntry/ns/name` that asked for origination. */
  source: string;
}

/** Where the gateway sends an allowed connection, from the matched ServiceEntry and port. */
export interface Upstream {
  /** `NONE`: the address the client dialled; `DNS`/`DNS_ROUND_ROBIN`: resolve the host (or the endpoints); `STATIC`: the endpoints. */
  resolution: 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN';
  /** Port to dial: the ServiceEntry port's `targetPort`, or its number. */
  port: number;
  /** The ServiceEntry `endpoints`, each with the port to dial on it; absent when it lists none. */
  endpoints?: readonly { address: string; port: number }[];
  /** The ServiceEntry `addresses` (canonical IPs and CIDRs); absent when it lists none. With `NONE`, what a dialled IP may be besides the host's own addresses. */
  addresses?: readonly string[];
}

export interface Decision {
  allow: boolean;
  /** True when mode REPORT let through what REGISTRY_ONLY would deny. */
  wouldDeny: boolean;
  reason: DecisionReason;
  /** `ServiceEntry/namespace/name` that matched, or undefined. */
  rule?: string;
  /** The ServiceEntry host pattern that matched (`api.example.com`, `*.example.com`). */
  matchedHost?: string;
  mode: PolicyMode;
  /** The matched ServiceEntry port's protocol, when a port matched. */
  protocol?: PortProtocol;
  /** What the gateway must do to reach the destination, when it originates TLS. */
  tls?: TlsOrigination;
  /** How to reach the destination, when a rule matched. */
  upstream?: Upstream;
  /** `Sidecar/namespace/name` whose mode and egress hosts applied, when one did. */
  sidecar?: string;
}
