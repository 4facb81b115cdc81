import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentIdentityConfig } from '../agent/identity.ts';
import { startControlPlane } from '../control-plane/control-plane.ts';
import { loadTokenSigningKey, mintServiceAccountToken } from '../control-plane/service-account-token.ts';
import { createLogger } from '../core/logger.ts';
import type { CredentialFiles } from '../gateway/credentials.ts';
import { CertificateManager, OUTPUT_FILES } from '../pki/certificate-manager.ts';

/**
 * The demo's control plane: the real CA on loopback with a self-signed root in
 * a temp state dir, acting as its own token issuer (no cluster), and the token
 * a kubelet would have projected into the demo workload's pod.
 */
export interface DemoControlPlane {
  identity: AgentIdentityConfig;
  trustBundle: string;
  grpcPort: number;
  /** Scratch space removed by close(). */
  dir: string;
  /**
   * Certificate files for another workload (the gateway), asked for as a pod
   * would: with its own minted token, through the CA's gRPC API, written in
   * Istio's file names the way `--cert`/`--key`/`--trust-bundle` read them.
   */
  issueCertificateFiles(workload: { namespace: string; serviceAccount: string }): Promise<CredentialFiles>;
  close(): Promise<void>;
}

export async function startDemoControlPlane(workload: { namespace: string; serviceAccount: string; trustDomain: string }): Promise<DemoControlPlane> {
  const dir = await mkdtemp(join(tmpdir(), 'egressd-demo-'));
  const stateDir = join(dir, 'control-plane');
  const cp = await startControlPlane({
    listen: { host: '127.0.0.1', port: 0 },
    ca: { stateDir, trustDomain: workload.trustDomain },
    policy: { trustDomain: workload.trustDomain, defaultValiditySeconds: 3600, maxValiditySeconds: 86_400 },
    tokens: { kind: 'local' },
    serverNames: ['localhost'],
    logger: createLogger('control-plane', { level: 'warn' }),
  });
  const tokenFile = join(dir, 'token');
  const key = await loadTokenSigningKey({ stateDir });
  await writeFile(tokenFile, mintServiceAccountToken(key, { namespace: workload.namespace, serviceAccount: workload.serviceAccount, ttlSeconds: 3600 }));
  const trustBundle = join(stateDir, 'trust-bundle.pem');
  return {
    grpcPort: cp.grpcPort,
    trustBundle,
    dir,
    issueCertificateFiles: async ({ namespace, serviceAccount }) => {
      const name = `${namespace}-${serviceAccount}`;
      const workloadToken = join(dir, `${name}-token`);
      await writeFile(workloadToken, mintServiceAccountToken(key, { namespace, serviceAccount, ttlSeconds: 3600 }));
      const outputDir = join(dir, name);
      const manager = new CertificateManager({
        identity: { trustDomain: workload.trustDomain, namespace, serviceAccount },
        ca: { address: `127.0.0.1:${cp.grpcPort}`, serverName: 'localhost' },
        tokenFile: workloadToken,
        trustBundleFile: trustBundle,
        validitySeconds: 3600,
        outputDir,
      });
      manager.start();
      try {
        await manager.whenReady(15_000);
      } finally {
        await manager.stop();
      }
      return { certFile: join(outputDir, OUTPUT_FILES.chain), keyFile: join(outputDir, OUTPUT_FILES.key), trustBundleFile: join(outputDir, OUTPUT_FILES.bundle) };
    },
    identity: {
      caAddress: `127.0.0.1:${cp.grpcPort}`,
      caServerName: 'localhost',
      caRootCert: trustBundle,
      tokenFile,
      trustDomain: workload.trustDomain,
      serviceAccount: workload.serviceAccount,
      certTtlSeconds: 3600,
      renewFraction: 0.5,
    },
    close: async () => {
      await cp.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
