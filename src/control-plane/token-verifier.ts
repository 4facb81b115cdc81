import type { Refusal } from './refusals.ts';

/** Who asks for a certificate, as established from their token. */
export interface Caller {
  namespace: string;
  serviceAccount: string;
}

export type TokenVerdict = { ok: true; caller: Caller } | ({ ok: false } & Refusal);

/**
 * Establishes the caller from a bearer token. Two implementations: the control plane's
 * own issuer (outside a cluster) and Kubernetes TokenReview (inside one).
 */
export interface TokenVerifier {
  verify(token: string): Promise<TokenVerdict>;
}

/** `system:serviceaccount:NS:SA`, the username Kubernetes gives service accounts. */
export function callerFromUsername(username: string): Caller | undefined {
  const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(username);
  return m ? { namespace: m[1]!, serviceAccount: m[2]! } : undefined;
}
