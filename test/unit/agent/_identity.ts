/**
 * A real control plane (CA + token issuer) in-process on loopback, and the
 * identity settings an agent needs to get a certificate from it, for the
 * agent's identity tests and for `egressctl status`.
 */
import type { ExecutionContext } from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startControlPlane, type ControlPlane } from '../../../src/control-plane/control-plane.ts';
import { loadTokenSigningKey, mintServiceAccountToken } from '../../../src/control-plane/service-account-token.ts';
import { createLogger } from '../../../src/core/logger.ts';
import type { AgentIdentityConfig } from '../../../src/agent/identity.ts';
import { tempDir } from './_harness.ts';

export const TRUST_DOMAIN = 'example.org';
export const SPIFFE_ID = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/cart`;

export interface TestCa {
  cp: ControlPlane;
  stateDir: string;
  /** Where the agent reads its token; absent until writeToken(). */
  tokenFile: string;
  writeToken(): Promise<void>;
  /** For AgentConfig.identity (namespace `shop`, service account `cart`). */
  identity(extra?: Partial<AgentIdentityConfig>): AgentIdentityConfig;
}

export async function startTestCa(t: ExecutionContext, options: { writeToken?: boolean } = {}): Promise<TestCa> {
  const dir = tempDir(t, 'egressd-agent-ca-');
  const stateDir = join(dir, 'state');
  const cp = await startControlPlane({
    listen: { host: '127.0.0.1', port: 0 },
    ca: { stateDir, trustDomain: TRUST_DOMAIN },
    policy: { trustDomain: TRUST_DOMAIN, defaultValiditySeconds: 3600, maxValiditySeconds: 7200 },
    tokens: { kind: 'local' },
    serverNames: ['localhost'],
    logger: createLogger('control-plane', { level: 'silent' }),
  });
  let stopped = false;
  const stop = cp.stop.bind(cp);
  cp.stop = async () => {
    if (stopped) return;
    stopped = true;
    await stop();
  };
  t.teardown(() => cp.stop());
  const tokenFile = join(dir, 'token');
  const writeToken = async (): Promise<void> => {
    const key = await loadTokenSigningKey({ stateDir });
    await writeFile(tokenFile, mintServiceAccountToken(key, { namespace: 'shop', serviceAccount: 'cart', ttlSeconds: 3600 }));
  };
  if (options.writeToken ?? true) await writeToken();
  return {
    cp,
    stateDir,
    tokenFile,
    writeToken,
    identity: (extra = {}) => ({
      caAddress: `127.0.0.1:${cp.grpcPort}`,
      // The CA's certificate names localhost too; saying so keeps Node from warning about an IP as TLS server name.
      caServerName: 'localhost',
      caRootCert: join(stateDir, 'trust-bundle.pem'),
      tokenFile,
      trustDomain: TRUST_DOMAIN,
      serviceAccount: 'cart',
      certTtlSeconds: 3600,
      renewFraction: 0.5,
      ...extra,
    }),
  };
}
