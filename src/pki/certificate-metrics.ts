import { Counter, Gauge, type Registry } from 'prom-client';
import type { CertificateManager } from './certificate-manager.ts';

/** Metric names, documented in docs/identity.md. */
export const CERTIFICATE_METRICS = {
  ready: 'egressd_identity_certificate_ready',
  notAfter: 'egressd_identity_certificate_expiry_timestamp_seconds',
  nextRenewal: 'egressd_identity_next_renewal_timestamp_seconds',
  renewals: 'egressd_identity_renewals_total',
  failures: 'egressd_identity_renewal_failures_total',
  expirations: 'egressd_identity_expirations_total',
} as const;

/** Registers the manager's gauges and counters in a component's registry. */
export function registerCertificateMetrics(manager: CertificateManager, registry: Registry): void {
  const labelNames = ['spiffe_id'] as const;
  const labels = { spiffe_id: manager.spiffeId };
  const seconds = (d: Date | undefined): number => (d ? d.getTime() / 1000 : 0);
  new Gauge({
    name: CERTIFICATE_METRICS.ready,
    help: '1 while the workload holds a valid certificate, 0 before the first one and after expiry',
    labelNames,
    registers: [registry],
    collect() {
      this.set(labels, manager.isReady() ? 1 : 0);
    },
  });
  new Gauge({
    name: CERTIFICATE_METRICS.notAfter,
    help: 'notAfter of the current certificate (0 when none)',
    labelNames,
    registers: [registry],
    collect() {
      this.set(labels, seconds(manager.status().notAfter));
    },
  });
  new Gauge({
    name: CERTIFICATE_METRICS.nextRenewal,
    help: 'When the next renewal or retry is due',
    labelNames,
    registers: [registry],
    collect() {
      this.set(labels, seconds(manager.status().nextRenewal));
    },
  });
  const renewals = new Counter({ name: CERTIFICATE_METRICS.renewals, help: 'Certificates obtained, the first included', labelNames, registers: [registry] });
  const failures = new Counter({ name: CERTIFICATE_METRICS.failures, help: 'Failed certificate requests', labelNames, registers: [registry] });
  const expirations = new Counter({ name: CERTIFICATE_METRICS.expirations, help: 'Times the certificate expired before a renewal succeeded', labelNames, registers: [registry] });
  renewals.inc(labels, manager.status().renewals);
  failures.inc(labels, manager.status().failures);
  manager.on('rotated', () => renewals.inc(labels));
  manager.on('renewal-failed', () => failures.inc(labels));
  manager.on('expired', () => expirations.inc(labels));
}
