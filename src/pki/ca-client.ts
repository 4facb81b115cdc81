import * as grpc from '@grpc/grpc-js';
import { EgressdError } from '../core/errors.ts';
import { caServiceDefinition, CREATE_CERTIFICATE_PATH, type CreateCertificateRequest, type CreateCertificateResponse } from './ca-api.ts';

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
 * One CreateCertificate call on a fresh channel. Renewals are rare (hours apart), so a
 * channel per call costs nothing and picks up a rotated trust bundle or a moved CA.
 * Resolves to the PEM chain, leaf first; rejects with EGRESSD_ERR_CA_REQUEST carrying
 * the gRPC status code and the CA's message.
 */
export async function requestCertificate(endpoint: CaEndpoint, request: CertificateRequest): Promise<string[]> {
  const method = caServiceDefinition().CreateCertificate!;
  const options: grpc.ChannelOptions = endpoint.serverName
    ? { 'grpc.ssl_target_name_override': endpoint.serverName, 'grpc.default_authority': endpoint.serverName }
    : {};
  const client = new grpc.Client(endpoint.address, grpc.credentials.createSsl(Buffer.from(endpoint.trustBundlePem)), options);
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${request.token}`);
  for (const [k, v] of Object.entries(endpoint.metadata ?? {})) metadata.set(k, v);
  const body: CreateCertificateRequest = { csr: request.csrPem, validityDuration: String(Math.max(0, Math.floor(request.validitySeconds))) };
  try {
    const response = await new Promise<CreateCertificateResponse>((resolve, reject) => {
      client.makeUnaryRequest(
        CREATE_CERTIFICATE_PATH,
        method.requestSerialize,
        method.responseDeserialize as (b: Buffer) => CreateCertificateResponse,
        body,
        metadata,
        { deadline: Date.now() + (endpoint.deadlineMs ?? DEFAULT_DEADLINE_MS) },
        (err, value) => (err || !value ? reject(err ?? new Error('empty response')) : resolve(value)),
      );
    });
    return response.certChain;
  } catch (err) {
    const status = (err as Partial<grpc.ServiceError>).code;
    const name = status === undefined ? 'ERROR' : (grpc.status[status] ?? String(status));
    const details = (err as Partial<grpc.ServiceError>).details ?? (err as Error).message;
    throw new EgressdError('EGRESSD_ERR_CA_REQUEST', `CreateCertificate at ${endpoint.address}: ${name}: ${details}`, {
      cause: err,
      context: { grpcCode: status, grpcStatus: name },
    });
  } finally {
    client.close();
  }
}
