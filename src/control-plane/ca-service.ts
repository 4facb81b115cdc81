import * as grpc from '@grpc/grpc-js';
import { errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { CreateCertificateRequest, CreateCertificateResponse } from '../pki/ca-api.ts';
import type { CertificateAuthority } from '../pki/certificate-authority.ts';
import { parseCsr } from '../pki/csr.ts';
import { decideIssuance, type IssuancePolicy } from './csr-policy.ts';
import type { ControlPlaneMetrics } from './metrics.ts';
import { REFUSALS, type Refusal } from './refusals.ts';
import type { Caller, TokenVerifier } from './token-verifier.ts';

/** Log field names of CA decisions. */
export const CA_LOG_FIELDS = {
  reason: 'reason',
  identity: 'spiffeId',
  caller: 'caller',
  serial: 'serial',
  notAfter: 'notAfter',
  peer: 'peer',
} as const;

export interface CaServiceDeps {
  ca: CertificateAuthority;
  policy: IssuancePolicy;
  verifier: TokenVerifier;
  metrics: ControlPlaneMetrics;
  logger: Logger;
}

type Outcome = { ok: true; response: CreateCertificateResponse } | ({ ok: false; caller?: Caller } & Refusal);

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** The stages of one request: who is asking, is the request well formed, may they have it, sign. */
async function createCertificate(deps: CaServiceDeps, request: CreateCertificateRequest, metadata: grpc.Metadata): Promise<Outcome> {
  const header = metadata.get('authorization')[0];
  const token = typeof header === 'string' ? BEARER.exec(header)?.[1] : undefined;
  if (!token) return { ok: false, reason: 'token_missing', message: 'no "authorization: Bearer <service-account token>" metadata' };
  const verdict = await deps.verifier.verify(token);
  if (!verdict.ok) return verdict;
  const caller = verdict.caller;
  const requested = Number(request.validityDuration || '0');
  if (!Number.isSafeInteger(requested) || requested < 0) {
    return { ok: false, caller, reason: 'request_invalid', message: `validity_duration ${request.validityDuration} is not a non-negative number of seconds` };
  }
  const parsed = parseCsr(request.csr);
  if (!parsed.ok) return { ok: false, caller, reason: 'csr_malformed', message: parsed.message };
  const decision = decideIssuance(deps.policy, caller, parsed.facts, requested);
  if (!decision.allow) return { ok: false, caller, reason: decision.reason, message: decision.message };
  const issued = deps.ca.issue({ publicKeyDer: parsed.facts.publicKeyDer, names: { uris: [decision.spiffeId] }, ttlSeconds: decision.validitySeconds });
  deps.metrics.issued.inc();
  deps.logger.info(
    { [CA_LOG_FIELDS.identity]: decision.spiffeId, [CA_LOG_FIELDS.serial]: issued.serial, [CA_LOG_FIELDS.notAfter]: issued.notAfter.toISOString() },
    'certificate issued',
  );
  return { ok: true, response: { certChain: issued.chain } };
}

/** The gRPC handler of IstioCertificateService/CreateCertificate. It answers every request; none can stop the server. */
export function createCertificateHandler(deps: CaServiceDeps): grpc.handleUnaryCall<CreateCertificateRequest, CreateCertificateResponse> {
  return (call, callback) => {
    createCertificate(deps, call.request, call.metadata)
      .catch((err: unknown): Outcome => ({ ok: false, reason: 'internal', message: `internal error: ${errorMessage(err)}` }))
      .then((outcome) => {
        if (outcome.ok) return callback(null, outcome.response);
        deps.metrics.refused.inc({ reason: outcome.reason });
        deps.logger.warn(
          {
            [CA_LOG_FIELDS.reason]: outcome.reason,
            [CA_LOG_FIELDS.peer]: call.getPeer(),
            ...(outcome.caller ? { [CA_LOG_FIELDS.caller]: `${outcome.caller.namespace}/${outcome.caller.serviceAccount}` } : {}),
          },
          `certificate request refused: ${outcome.message}`,
        );
        callback({ code: REFUSALS[outcome.reason], details: `${outcome.reason}: ${outcome.message}` });
      });
  };
}
