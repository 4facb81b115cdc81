import type { CsrFacts } from '../pki/csr.ts';
import { identityProblem, spiffeId } from '../pki/spiffe.ts';
import type { Refusal } from './refusals.ts';
import type { Caller } from './token-verifier.ts';

/** What the CA will sign: a plain, documented value (see docs/identity.md). */
export interface IssuancePolicy {
  trustDomain: string;
  /** Validity when the request asks for none (validity_duration 0). */
  defaultValiditySeconds: number;
  /** Requests for more are capped, not refused. */
  maxValiditySeconds: number;
}

export const DEFAULT_VALIDITY_SECONDS = 24 * 3600;
export const MAX_VALIDITY_SECONDS = 90 * 24 * 3600;

export type IssuanceDecision = { allow: true; spiffeId: string; validitySeconds: number } | ({ allow: false } & Refusal);

/**
 * Pure: may this caller have a certificate for this CSR? Only its own SPIFFE ID, as the
 * one name; a proven, strong key; no CA powers. Every refusal names its reason.
 */
export function decideIssuance(policy: IssuancePolicy, caller: Caller, csr: CsrFacts, requestedSeconds: number): IssuanceDecision {
  const identity = { trustDomain: policy.trustDomain, namespace: caller.namespace, serviceAccount: caller.serviceAccount };
  const problem = identityProblem(identity);
  if (problem) return { allow: false, reason: 'token_not_service_account', message: `the token's identity cannot be a SPIFFE ID: ${problem}` };
  const expected = spiffeId(identity);
  if (!csr.selfSignatureValid) return { allow: false, reason: 'csr_bad_signature', message: 'the CSR signature does not verify with its own key (or uses an unsupported algorithm)' };
  if (typeof csr.key === 'string') return { allow: false, reason: 'csr_weak_key', message: csr.key };
  if (csr.requestsCa) return { allow: false, reason: 'csr_requests_ca', message: 'the CSR asks for a CA certificate (basicConstraints CA:TRUE)' };
  const others = [
    ...csr.dnsNames.map((n) => `DNS:${n}`),
    ...csr.ipAddresses.map((n) => `IP:${n}`),
    ...csr.emails.map((n) => `email:${n}`),
    ...csr.otherNames.map((n) => `other:${n}`),
    ...csr.uris.filter((u) => u !== expected).map((u) => `URI:${u}`),
  ];
  if (csr.uris.length === 0) return { allow: false, reason: 'csr_no_identity', message: `the CSR names no SPIFFE ID; expected ${expected}` };
  if (!csr.uris.includes(expected)) {
    return { allow: false, reason: 'csr_identity_mismatch', message: `the CSR asks for ${csr.uris.join(', ')}, but the token is for ${expected}` };
  }
  if (others.length > 0 || csr.uris.length > 1) {
    return { allow: false, reason: 'csr_extra_names', message: `the CSR may name only ${expected}; also asked for ${others.join(', ') || 'a duplicate URI'}` };
  }
  const requested = requestedSeconds > 0 ? requestedSeconds : policy.defaultValiditySeconds;
  return { allow: true, spiffeId: expected, validitySeconds: Math.min(requested, policy.maxValiditySeconds) };
}
