import * as grpc from '@grpc/grpc-js';
import { createPublicKey } from 'node:crypto';
import { isIP } from 'node:net';
import { EgressdError, errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { caServiceDefinition } from '../pki/ca-api.ts';
import { loadCertificateAuthority, type CaOrigin, type CaSource } from '../pki/ca-files.ts';
import type { CertificateAuthority } from '../pki/certificate-authority.ts';
import { generateWorkloadKey, privateKeyPem } from '../pki/keys.ts';
import { startAdminServer, type AdminServer } from './admin-server.ts';
import { createCertificateHandler } from './ca-service.ts';
import type { IssuancePolicy } from './csr-policy.ts';
import { createControlPlaneMetrics, type ControlPlaneMetrics } from './metrics.ts';
import { DEFAULT_AUDIENCE, LocalTokenVerifier, loadTokenSigningKey } from './service-account-token.ts';
import type { TokenVerifier } from './token-verifier.ts';

/** Who vouches for callers' tokens. */
export type TokenMode =
  | { kind: 'local'; signingKeyFile?: string; issuer?: string }
  | { kind: 'kubernetes'; kubeconfigFile?: string };

/** Everything the control plane needs, validated by the command before it gets here. */
export interface ControlPlaneConfig {
  listen: { host: string; port: number };
  /** Omit for no admin port. */
  admin?: { host: string; port: number };
  ca: CaSource;
  policy: IssuancePolicy;
  audience?: string;
  tokens: TokenMode;
  /** DNS names for the CA's own TLS certificate (loopback IPs and an IP listen address are added). */
  serverNames: readonly string[];
  logger: Logger;
}

export interface ControlPlane {
  grpcPort: number;
  adminPort?: number;
  ca: CertificateAuthority;
  caOrigin: CaOrigin;
  metrics: ControlPlaneMetrics;
  stop(): Promise<void>;
}

const SERVER_CERT_SECONDS = 365 * 86_400;

async function tokenVerifier(config: ControlPlaneConfig): Promise<TokenVerifier> {
  const audience = config.audience ?? DEFAULT_AUDIENCE;
  if (config.tokens.kind === 'kubernetes') {
    // Loaded only in a cluster: the Kubernetes client is large and unused by local tokens.
    const { TokenReviewVerifier } = await import('./token-review-verifier.ts');
    return new TokenReviewVerifier({ audience, ...(config.tokens.kubeconfigFile ? { kubeconfigFile: config.tokens.kubeconfigFile } : {}) });
  }
  const key = await loadTokenSigningKey({
    ...(config.tokens.signingKeyFile ? { file: config.tokens.signingKeyFile } : {}),
    ...(config.ca.stateDir ? { stateDir: config.ca.stateDir } : {}),
    create: true,
  });
  return new LocalTokenVerifier({ keys: [key], audience, ...(config.tokens.issuer ? { issuer: config.tokens.issuer } : {}) });
}

/** The CA's TLS identity, issued by itself at start for its DNS names and addresses. */
function serverCredentials(ca: CertificateAuthority, config: ControlPlaneConfig): grpc.ServerCredentials {
  const key = generateWorkloadKey();
  const ips = ['127.0.0.1', '::1'];
  if (isIP(config.listen.host) && !['0.0.0.0', '::'].includes(config.listen.host) && !ips.includes(config.listen.host)) ips.push(config.listen.host);
  const issued = ca.issue({
    publicKeyDer: createPublicKey(key).export({ format: 'der', type: 'spki' }),
    names: { dnsNames: config.serverNames, ipAddresses: ips },
    ttlSeconds: SERVER_CERT_SECONDS,
  });
  const chain = issued.chain.slice(0, -1).join('');
  return grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(privateKeyPem(key)), cert_chain: Buffer.from(chain) }], false);
}

export async function startControlPlane(config: ControlPlaneConfig): Promise<ControlPlane> {
  const { logger } = config;
  const { ca, origin } = await loadCertificateAuthority(config.ca);
  const verifier = await tokenVerifier(config);
  const metrics = createControlPlaneMetrics(ca);
  const server = new grpc.Server();
  server.addService(caServiceDefinition(), { CreateCertificate: createCertificateHandler({ ca, policy: config.policy, verifier, metrics, logger }) });
  const target = `${isIP(config.listen.host) === 6 ? `[${config.listen.host}]` : config.listen.host}:${config.listen.port}`;
  const grpcPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync(target, serverCredentials(ca, config), (err, port) =>
      err ? reject(new EgressdError('EGRESSD_ERR_LISTEN', `control plane cannot listen on ${target}: ${errorMessage(err)}`, { cause: err })) : resolve(port),
    ),
  );
  let serving = true;
  let admin: AdminServer | undefined;
  try {
    if (config.admin) admin = await startAdminServer(config.admin.host, config.admin.port, metrics.registry, () => serving);
  } catch (err) {
    server.forceShutdown();
    throw new EgressdError('EGRESSD_ERR_LISTEN', `admin port ${config.admin!.host}:${config.admin!.port}: ${errorMessage(err)}`, { cause: err });
  }
  logger.info(
    { grpcPort, adminPort: admin?.address.port, caOrigin: origin, trustDomain: config.policy.trustDomain, tokens: config.tokens.kind, caNotAfter: ca.notAfter.toISOString() },
    'control plane serving',
  );
  return {
    grpcPort,
    ...(admin ? { adminPort: admin.address.port } : {}),
    ca,
    caOrigin: origin,
    metrics,
    async stop() {
      serving = false;
      await new Promise<void>((resolve) => {
        // Give in-flight requests a moment, then cut: a CA request is retried by its client anyway.
        const timer = setTimeout(() => server.forceShutdown(), 2000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      if (admin) {
        const closed = new Promise<void>((resolve) => admin!.server.close(() => resolve()));
        admin.server.closeAllConnections();
        await closed;
      }
    },
  };
}
