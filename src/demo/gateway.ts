import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createAuditSink, type AuditRecord } from '../core/audit.ts';
import { createLogger } from '../core/logger.ts';
import { startGateway } from '../gateway/gateway.ts';
import type { DemoControlPlane } from './control-plane.ts';
import type { ExternalApi } from './external-api.ts';
import { auditCollector } from './present.ts';

/**
 * The demo's egress gateway: the real one, in-process on loopback, with a
 * certificate the demo's control plane signs (the same CA as the agent's, so
 * each trusts the other through one bundle) and an allowlist of its own.
 */
export const GATEWAY_WORKLOAD = { namespace: 'egressd', serviceAccount: 'egress-gateway' } as const;
export const GATEWAY_REPLICA = 'egress-gateway-0';

export interface DemoGateway {
  /** `127.0.0.1:port`, the agent's --egress-gateway. */
  address: string;
  /** The SPIFFE ID its certificate carries, the agent's --gateway-identity. */
  spiffeId: string;
  /** Where its allowlist was written. */
  allowlistFile: string;
  records: AuditRecord[];
  close(): Promise<void>;
}

/**
 * The gateway's allowlist: api.example.test with the stand-in's loopback
 * ports as STATIC endpoints (a listed endpoint is the one way a loopback
 * address gets past the gateway's forbidden ranges), TLS passed through on
 * 443, and port 80 originated as HTTPS (Istio's pattern, as in
 * deploy/examples/tls-origination.yaml) verified against the demo CA.
 */
function allowlist(api: ExternalApi, caFile: string): string {
  return `# Written by egressd demo: the gateway's view of api.example.test, served on loopback.
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: demo-api, namespace: egressd }
spec:
  hosts: [${api.host}]
  exportTo: ["*"]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports:
    - { number: 443, name: https, protocol: HTTPS }
    - { number: 80, name: http, protocol: HTTP, targetPort: 443 }
  endpoints:
    - address: 127.0.0.1
      ports: { https: ${api.httpsPort}, http: ${api.httpsPort} }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: demo-api-tls, namespace: egressd }
spec:
  host: ${api.host}
  exportTo: ["*"]
  trafficPolicy:
    portLevelSettings:
      - port: { number: 80 }
        tls: { mode: SIMPLE, sni: ${api.host}, caCertificates: ${caFile} }
`;
}

export async function startDemoGateway(controlPlane: DemoControlPlane, api: ExternalApi, trustDomain: string): Promise<DemoGateway> {
  const caFile = join(controlPlane.dir, 'demo-external-ca.pem');
  await writeFile(caFile, api.pki.caPem);
  const configDir = join(controlPlane.dir, 'gateway-config');
  const allowlistFile = join(configDir, 'demo-api.yaml');
  await mkdir(configDir);
  await writeFile(allowlistFile, allowlist(api, caFile));
  const credentials = await controlPlane.issueCertificateFiles(GATEWAY_WORKLOAD);
  const { records, destination } = auditCollector();
  const audit = createAuditSink({ component: 'gateway', stdout: false, destination });
  const gateway = await startGateway(
    {
      listen: { host: '127.0.0.1', port: 0 },
      trustDomain,
      replica: GATEWAY_REPLICA,
      credentials,
      configPaths: [configDir],
      reloadIntervalMs: 0,
      connectTimeoutMs: 2000,
    },
    { logger: createLogger('gateway', { level: 'warn' }), audit },
  );
  return {
    address: `127.0.0.1:${gateway.address().port}`,
    spiffeId: `spiffe://${trustDomain}/ns/${GATEWAY_WORKLOAD.namespace}/sa/${GATEWAY_WORKLOAD.serviceAccount}`,
    allowlistFile,
    records,
    close: async () => {
      await gateway.close(0);
      await audit.close();
    },
  };
}
