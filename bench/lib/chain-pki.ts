import { createPublicKey } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSelfSignedRoot } from '../../src/pki/ca-files.ts';
import { CertificateAuthority } from '../../src/pki/certificate-authority.ts';
import type { LeafNames } from '../../src/pki/leaf-certificate.ts';
import { generateWorkloadKey, privateKeyPem } from '../../src/pki/keys.ts';
import { createServerPki } from '../../src/pki/server-pki.ts';
import { CHAIN } from './chain-lab.ts';

/**
 * Two throwaway CAs made at run time, written as files into the run's
 * directory (readable by every UID: the agent and the pod's HAProxy run as
 * 1337; the keys are throwaway):
 * - the mesh CA: the control plane signs with it (so the agent's certificate
 *   comes from it), and it signs the gateway's SPIFFE certificate and the
 *   HAProxies' client and server certificates;
 * - the internet CA: the destination's HTTPS certificate for api.example.test,
 *   which the gateway, the gateway HAProxy and the direct client verify.
 */
export const GATEWAY_ID = 'spiffe://cluster.local/ns/egressd/sa/egress-gateway';
export const WORKLOAD = { namespace: 'bench', serviceAccount: 'app' } as const;

export interface ChainPki {
  meshCa: string;
  meshCaKey: string;
  internetCa: string;
  server: { cert: string; key: string };
  gateway: { cert: string; key: string };
  /** cert + key in one file, as HAProxy's `crt` wants. */
  haproxyClient: string;
  haproxyGateway: string;
}

export async function writeChainPki(dir: string): Promise<ChainPki> {
  const root = await createSelfSignedRoot('cluster.local');
  const mesh = CertificateAuthority.fromPem({ certificatePem: root.certificatePem, keyPem: root.keyPem });
  const issue = (names: LeafNames): { cert: string; key: string } => {
    const key = generateWorkloadKey();
    const issued = mesh.issue({ publicKeyDer: createPublicKey(key).export({ format: 'der', type: 'spki' }), names, ttlSeconds: 86_400 });
    return { cert: issued.chain.slice(0, -1).join(''), key: privateKeyPem(key) };
  };
  const server = await createServerPki([CHAIN.host], { caName: 'egressd bench internet CA' });
  const file = async (name: string, text: string): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, text, { mode: 0o644 });
    return path;
  };
  const gateway = issue({ uris: [GATEWAY_ID] });
  const client = issue({ uris: [`spiffe://cluster.local/ns/${WORKLOAD.namespace}/sa/${WORKLOAD.serviceAccount}`] });
  const haGateway = issue({ dnsNames: [CHAIN.haproxyGwName] });
  return {
    meshCa: await file('mesh-ca.pem', root.certificatePem),
    meshCaKey: await file('mesh-ca-key.pem', root.keyPem),
    internetCa: await file('internet-ca.pem', server.caPem),
    server: { cert: await file('server.pem', server.certPem), key: await file('server-key.pem', server.keyPem) },
    gateway: { cert: await file('gateway.pem', gateway.cert), key: await file('gateway-key.pem', gateway.key) },
    haproxyClient: await file('haproxy-client.pem', client.cert + client.key),
    haproxyGateway: await file('haproxy-gateway.pem', haGateway.cert + haGateway.key),
  };
}
