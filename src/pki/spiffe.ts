import { EgressdError } from '../core/errors.ts';

/**
 * SPIFFE IDs of Kubernetes workloads: spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>,
 * the form Istio uses, so that certificates from istiod and from us name workloads alike.
 */
export interface WorkloadIdentity {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;
// Kubernetes: a namespace is a DNS label, a service account a DNS subdomain.
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SERVICE_ACCOUNT = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** Why a trust domain, namespace or service account is unusable, or undefined when it is fine. */
export function identityProblem(id: WorkloadIdentity): string | undefined {
  if (!TRUST_DOMAIN.test(id.trustDomain)) return `trust domain "${id.trustDomain}" must be lowercase letters, digits, ".", "-" or "_"`;
  if (!NAMESPACE.test(id.namespace)) return `namespace "${id.namespace}" is not a Kubernetes namespace name`;
  if (!SERVICE_ACCOUNT.test(id.serviceAccount)) return `service account "${id.serviceAccount}" is not a Kubernetes service account name`;
  return undefined;
}

export function spiffeId(id: WorkloadIdentity): string {
  const problem = identityProblem(id);
  if (problem) throw new EgressdError('EGRESSD_ERR_PKI', `cannot form a SPIFFE ID: ${problem}`);
  return `spiffe://${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

/** The workload identity named by a SPIFFE ID, or undefined if the ID is not of the Kubernetes form. */
export function parseSpiffeId(uri: string): WorkloadIdentity | undefined {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(uri);
  if (!m) return undefined;
  const id = { trustDomain: m[1]!, namespace: m[2]!, serviceAccount: m[3]! };
  return identityProblem(id) === undefined ? id : undefined;
}
