import { EgressdError } from '../core/errors.ts';
import { CREATE_CERTIFICATE_PATH, decodeCertificateResponse, encodeCertificateRequest } from './ca-messages.ts';
import { GRPC_STATUS, GrpcStatusError, grpcStatusName, grpcUnary } from './grpc-unary.ts';

/** How to reach a CA that speaks Istio's certificate API: ours, istiod, or cert-manager's istio-csr. */
export interface CaEndpoint {
  /** host:port of the gRPC service. */
  address: string;
  /** PEM roots that the CA's TLS certificate must chain to. */
  trustBundlePem: string;
  /** Name to check the CA's certificate against, when the address is not that name (e.g. an IP). */
  serverName?: string;
  /** Extra request metadata, e.g. Istio's `ClusterID`. */
  metadata?: Readonly<Record<string, string>>;
  deadlineMs?: number;
}

export interface CertificateRequest {
  csrPem: string;
  validitySeconds: number;
  /** Service-account JWT, sent as `authorization: Bearer`. */
  token: string;
}

const DEFAULT_DEADLINE_MS = 10_000;

/**
 * One CreateCertificate call on a connection of its own (grpc-unary.ts). Renewals are rare
 * (hours apart), so a connection per call costs nothing and picks up a rotated trust bundle
 * or a moved CA. Resolves to the PEM chain, leaf first; rejects with EGRESSD_ERR_CA_REQUEST
 * carrying the gRPC status (code and name) and the CA's message.
 */
export async function requestCertificate(endpoint: CaEndpoint, request: CertificateRequest): Promise<string[]> {
  try {
    const response = await grpcUnary({
      address: endpoint.address,
      ca: endpoint.trustBundlePem,
      ...(endpoint.serverName === undefined ? {} : { serverName: endpoint.serverName }),
      path: CREATE_CERTIFICATE_PATH,
      message: encodeCertificateRequest({ csr: request.csrPem, validitySeconds: request.validitySeconds }),
      metadata: { ...endpoint.metadata, authorization: `Bearer ${request.token}` },
      deadlineMs: endpoint.deadlineMs ?? DEFAULT_DEADLINE_MS,
    });
    try {
      return decodeCertificateResponse(response);
    } catch (err) {
      throw new GrpcStatusError(GRPC_STATUS.INTERNAL, `the response is not an IstioCertificateResponse: ${(err as Error).message}`);
    }
  } catch (err) {
    const status = err instanceof GrpcStatusError ? err.code : undefined;
    const name = status === undefined ? 'ERROR' : grpcStatusName(status);
    const details = err instanceof GrpcStatusError ? err.details : (err as Error).message;
    throw new EgressdError('EGRESSD_ERR_CA_REQUEST', `CreateCertificate at ${endpoint.address}: ${name}: ${details}`, {
      cause: err,
      context: { grpcCode: status, grpcStatus: name },
    });
  }
}
