import { Counter, Gauge, Registry } from 'prom-client';
import type { CertificateAuthority } from '../pki/certificate-authority.ts';
import { REFUSALS, type RefusalReason } from './refusals.ts';

/** Metric names, documented in docs/identity.md. */
export const CONTROL_PLANE_METRICS = {
  issued: 'egressd_ca_certificates_issued_total',
  refused: 'egressd_ca_requests_refused_total',
  caExpiry: 'egressd_ca_signing_certificate_expiry_timestamp_seconds',
} as const;

export interface ControlPlaneMetrics {
  registry: Registry;
  issued: Counter;
  refused: Counter<'reason'>;
}

export function createControlPlaneMetrics(ca: CertificateAuthority): ControlPlaneMetrics {
  const registry = new Registry();
  const issued = new Counter({ name: CONTROL_PLANE_METRICS.issued, help: 'Workload certificates issued', registers: [registry] });
  const refused = new Counter({ name: CONTROL_PLANE_METRICS.refused, help: 'CreateCertificate requests refused, by reason', labelNames: ['reason'], registers: [registry] });
  // Every reason at 0 from the start, so that rate() and alerts see the series before the first refusal.
  for (const reason of Object.keys(REFUSALS) as RefusalReason[]) refused.inc({ reason }, 0);
  new Gauge({ name: CONTROL_PLANE_METRICS.caExpiry, help: 'notAfter of the CA signing certificate', registers: [registry] }).set(ca.notAfter.getTime() / 1000);
  return { registry, issued, refused };
}
