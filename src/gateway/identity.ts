import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { parseSpiffeId, type WorkloadIdentity } from '../pki/spiffe.ts';
import { uriSans } from '../tunnel/san.ts';

/**
 * Who is calling: the SPIFFE ID in the client certificate, which the TLS
 * handshake has already chained to the trust bundle. Nothing the agent says
 * in a header can change it.
 */

export interface CallerIdentity extends WorkloadIdentity {
  /** `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`. */
  spiffeId: string;
  /** Hex SHA-256 of the client certificate (DER), for x-forwarded-client-cert `Hash=`. */
  certificateSha256?: string;
}

/** Why a verified certificate still does not name a caller; each is a label of the handshake-failure metric. */
export type IdentityProblem = 'no_client_certificate' | 'no_spiffe_id' | 'several_spiffe_ids' | 'not_a_workload_id' | 'foreign_trust_domain';

export type IdentityResult = { ok: true; identity: CallerIdentity } | { ok: false; problem: IdentityProblem; detail: string };

export function peerIdentity(socket: TLSSocket, trustDomain: string): IdentityResult {
  const cert = socket.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return { ok: false, problem: 'no_client_certificate', detail: 'the client sent no certificate' };
  const result = identityFromSubjectAltName(cert.subjectaltname, trustDomain);
  if (result.ok && cert.raw) result.identity.certificateSha256 = createHash('sha256').update(cert.raw).digest('hex');
  return result;
}

/** The SPIFFE rules: exactly one URI SAN of scheme spiffe, here of the Kubernetes form, in our trust domain. */
export function identityFromSubjectAltName(subjectAltName: string | undefined, trustDomain: string): IdentityResult {
  const spiffe = uriSans(subjectAltName).filter((uri) => uri.toLowerCase().startsWith('spiffe://'));
  if (spiffe.length === 0) return { ok: false, problem: 'no_spiffe_id', detail: 'the client certificate has no spiffe:// URI SAN' };
  if (spiffe.length > 1) return { ok: false, problem: 'several_spiffe_ids', detail: `the client certificate names ${spiffe.length} SPIFFE IDs` };
  const uri = spiffe[0]!;
  const id = parseSpiffeId(uri);
  if (!id) return { ok: false, problem: 'not_a_workload_id', detail: `${uri} is not spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>` };
  if (id.trustDomain !== trustDomain) {
    return { ok: false, problem: 'foreign_trust_domain', detail: `${uri} is not in trust domain ${trustDomain}` };
  }
  return { ok: true, identity: { ...id, spiffeId: uri } };
}
