import { status } from '@grpc/grpc-js';

/**
 * Why the CA refused a request: a stable reason (a metric label and a log field)
 * and the gRPC status it answers with. A refusal is a decision, not an exception.
 */
export const REFUSALS = {
  token_missing: status.UNAUTHENTICATED,
  token_malformed: status.UNAUTHENTICATED,
  token_unsigned: status.UNAUTHENTICATED,
  token_bad_signature: status.UNAUTHENTICATED,
  token_expired: status.UNAUTHENTICATED,
  token_not_yet_valid: status.UNAUTHENTICATED,
  token_wrong_audience: status.UNAUTHENTICATED,
  token_wrong_issuer: status.UNAUTHENTICATED,
  token_not_service_account: status.UNAUTHENTICATED,
  token_not_authenticated: status.UNAUTHENTICATED,
  token_review_failed: status.UNAVAILABLE,
  request_invalid: status.INVALID_ARGUMENT,
  csr_malformed: status.INVALID_ARGUMENT,
  csr_bad_signature: status.INVALID_ARGUMENT,
  csr_weak_key: status.INVALID_ARGUMENT,
  csr_no_identity: status.INVALID_ARGUMENT,
  csr_identity_mismatch: status.PERMISSION_DENIED,
  csr_extra_names: status.PERMISSION_DENIED,
  csr_requests_ca: status.PERMISSION_DENIED,
  internal: status.INTERNAL,
} as const;

export type RefusalReason = keyof typeof REFUSALS;

export interface Refusal {
  reason: RefusalReason;
  message: string;
}
