import { isoTime } from '../core/iso-time.ts';
import { parseHostPort } from '../core/net.ts';
import type { Logger } from '../core/logger.ts';
import { CertificateManager, type CertificateStatus } from '../pki/certificate-manager.ts';
import { identityProblem } from '../pki/spiffe.ts';

/**
 * The agent's workload identity: a SPIFFE certificate from the CA (Istio's
 * CreateCertificate API: the egressd control plane, istiod, istio-csr),
 * renewed by the CertificateManager (src/pki). The agent is ready only
 * while it holds a valid one; the gateway route takes its credentials for
 * mTLS from `secureContext()`.
 */
export interface AgentIdentityConfig {
  /** host:port of the CA. */
  caAddress: string;
  /** Name the CA's certificate must carry, when `caAddress` does not say it (an IP address). */
  caServerName?: string;
  /** PEM roots that the CA's TLS certificate and our issued chain must lead to; re-read at each renewal. */
  caRootCert: string;
  /** Projected service-account token for the CA's audience; re-read at each renewal (the kubelet rotates it). */
  tokenFile: string;
  trustDomain: string;
  /** The pod's service account: with the namespace, it makes the SPIFFE ID. */
  serviceAccount: string;
  /** Validity asked of the CA (which may cap it). */
  certTtlSeconds: number;
  /** Renew once this fraction of the remaining lifetime has passed. */
  renewFraction: number;
  /** Write cert-chain.pem, key.pem and root-cert.pem here on each rotation, for the workload's own use. */
  certOutputDir?: string;
}

export const IDENTITY_DEFAULTS = Object.freeze({
  caRootCert: '/etc/egressd/trust-bundle.pem',
  tokenFile: '/var/run/secrets/tokens/egressd-token',
  trustDomain: 'cluster.local',
  serviceAccount: 'default',
  certTtlSeconds: 86_400,
  renewFraction: 0.5,
});

/** Every problem with an identity config, worded for the flag that sets it. */
export function identityProblems(c: AgentIdentityConfig, namespace: string): string[] {
  const problems: string[] = [];
  try {
    parseHostPort(c.caAddress);
  } catch {
    problems.push(`caAddress "${c.caAddress}" is not host:port`);
  }
  for (const key of ['caRootCert', 'tokenFile'] as const) if (c[key] === '') problems.push(`${key} is empty`);
  if (c.certOutputDir === '') problems.push('certOutputDir is empty');
  if (c.caServerName === '') problems.push('caServerName is empty');
  const who = identityProblem({ trustDomain: c.trustDomain, namespace, serviceAccount: c.serviceAccount });
  if (who !== undefined) problems.push(who);
  if (!Number.isInteger(c.certTtlSeconds) || c.certTtlSeconds < 1) problems.push(`certTtlSeconds: ${c.certTtlSeconds} must be a positive number of seconds`);
  if (!(c.renewFraction > 0 && c.renewFraction < 1)) problems.push(`renewFraction: ${c.renewFraction} must be between 0 and 1`);
  return problems;
}

export function createIdentityManager(c: AgentIdentityConfig, namespace: string, logger: Logger): CertificateManager {
  return new CertificateManager({
    identity: { trustDomain: c.trustDomain, namespace, serviceAccount: c.serviceAccount },
    ca: { address: c.caAddress, ...(c.caServerName === undefined ? {} : { serverName: c.caServerName }) },
    tokenFile: c.tokenFile,
    trustBundleFile: c.caRootCert,
    validitySeconds: c.certTtlSeconds,
    renewAtFraction: c.renewFraction,
    ...(c.certOutputDir === undefined ? {} : { outputDir: c.certOutputDir }),
    logger: logger.child({ subsystem: 'identity' }),
  });
}

/** What `/certs` answers: the certificate held, its renewal, and the CA it comes from. */
export interface CertsDump {
  enabled: boolean;
  identity?: string;
  ready?: boolean;
  ca?: string;
  serial?: string | null;
  notBefore?: string | null;
  notAfter?: string | null;
  nextRenewal?: string | null;
  renewals?: number;
  failures?: number;
  consecutiveFailures?: number;
  lastError?: string | null;
}

export function certsDump(manager: CertificateManager | undefined, caAddress: string | undefined): CertsDump {
  if (manager === undefined) return { enabled: false };
  const s: CertificateStatus = manager.status();
  const iso = (d: Date | undefined): string | null => (d === undefined ? null : isoTime(d.getTime()));
  return {
    enabled: true,
    identity: s.spiffeId,
    ready: s.ready,
    ...(caAddress === undefined ? {} : { ca: caAddress }),
    serial: s.serial ?? null,
    notBefore: iso(s.notBefore),
    notAfter: iso(s.notAfter),
    nextRenewal: iso(s.nextRenewal),
    renewals: s.renewals,
    failures: s.failures,
    consecutiveFailures: s.consecutiveFailures,
    lastError: s.lastError ?? null,
  };
}
