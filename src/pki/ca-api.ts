import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';

/**
 * Istio's certificate API, loaded from proto/istio-ca.proto with @grpc/proto-loader
 * (no generated code to keep in step). Shared by the agent's client and the control plane.
 */
export const CA_SERVICE = 'istio.v1.auth.IstioCertificateService';
export const CREATE_CERTIFICATE_PATH = `/${CA_SERVICE}/CreateCertificate`;

export interface CreateCertificateRequest {
  csr: string;
  /** Seconds; int64 on the wire, a decimal string here so that no precision is lost. */
  validityDuration: string;
  metadata?: { fields?: Record<string, unknown> } | null;
}

export interface CreateCertificateResponse {
  certChain: string[];
}

const PROTO_FILE = fileURLToPath(new URL('../../proto/istio-ca.proto', import.meta.url));

let definition: grpc.ServiceDefinition | undefined;

/** The service definition: for `server.addService` and `grpc.makeGenericClientConstructor`. */
export function caServiceDefinition(): grpc.ServiceDefinition {
  if (!definition) {
    const packageDefinition = protoLoader.loadSync(PROTO_FILE, { keepCase: false, longs: String, defaults: true, oneofs: true });
    definition = packageDefinition[CA_SERVICE] as grpc.ServiceDefinition;
  }
  return definition;
}
