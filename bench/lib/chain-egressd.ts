import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { productionAgentArgs, productionEnv, productionGatewayArgs } from '../../scripts/build.ts';
import { loadTokenSigningKey, mintServiceAccountToken } from '../../src/control-plane/service-account-token.ts';
import { execInNetns, mustExecInNetns, pollUntil, spawnNodeInNetns, waitForListen, type NetnsProcess, type TeardownHost } from '../../src/lab/index.ts';
import { CHAIN, type ChainLab } from './chain-lab.ts';
import { GATEWAY_ID, WORKLOAD, type ChainPki } from './chain-pki.ts';

/**
 * egressd's chain, every part the real binary:
 * - gw: `egressd control-plane` (the CA, signing with the mesh CA, issuing its own tokens) and
 *   `egressd gateway` (mTLS tunnels from agents, TLS origination by the DestinationRule);
 * - pod: `egressd init`'s iptables rules, and `egressd agent` as UID 1337 with a workload
 *   certificate from the control plane and `--egress-gateway`, so every allowed connection
 *   goes to the gateway. The agent runs from the production bundle (dist/) with its production
 *   Node flags, the others from the sources (bin/egressd.js).
 * The allowlist (one directory, read by agent and gateway) lets the application speak plain
 * HTTP to api.example.test:80; the gateway sends it as HTTPS to port 443, verifying the
 * destination against the internet CA. The destination's address is private, so the
 * ServiceEntry lists it (the gateway refuses unlisted private addresses).
 */
export interface EgressdChain {
  controlPlane: NetnsProcess;
  gateway: NetnsProcess;
  agent: NetnsProcess;
}

function allowlist(pki: ChainPki): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: ${WORKLOAD.namespace} }
spec:
  hosts: [${CHAIN.host}]
  addresses: [${CHAIN.serverIp}/32]
  location: MESH_EXTERNAL
  resolution: DNS
  ports:
    - { number: ${CHAIN.appPort}, name: http, protocol: HTTP, targetPort: ${CHAIN.serverPort} }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api-tls, namespace: ${WORKLOAD.namespace} }
spec:
  host: ${CHAIN.host}
  trafficPolicy:
    portLevelSettings:
      - port: { number: ${CHAIN.appPort} }
        tls: { mode: SIMPLE, caCertificates: ${pki.internetCa} }
`;
}

export async function startEgressdChain(t: TeardownHost, lab: ChainLab, pki: ChainPki, dir: string, agentUid: number): Promise<EgressdChain> {
  const config = join(dir, 'config');
  const state = join(dir, 'control-plane');
  await mkdir(config, { mode: 0o755 });
  await writeFile(join(config, 'allowlist.yaml'), allowlist(pki), { mode: 0o644 });

  // The kubelet's part: a projected service-account token, signed with the key the control plane will use.
  const signer = await loadTokenSigningKey({ stateDir: state, create: true });
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, mintServiceAccountToken(signer, { ...WORKLOAD, ttlSeconds: 3600 }), { mode: 0o644 });

  const controlPlane = spawnNodeInNetns(t, lab.gw, [
    'bin/egressd.js', 'control-plane',
    '--listen', `${CHAIN.gwIp}:${CHAIN.caPort}`,
    '--admin-listen', `127.0.0.1:${CHAIN.caAdminPort}`,
    '--ca-cert', pki.meshCa,
    '--ca-key', pki.meshCaKey,
    '--state-dir', state,
    '--log-level', 'warn',
  ]);
  // The gateway as production runs it too: the bundle, not the sources through tsx (which add their own heap and GC).
  const gateway = spawnNodeInNetns(t, lab.gw, [
    ...(await productionGatewayArgs()),
    '--listen', `${CHAIN.gwIp}:${CHAIN.gatewayPort}`,
    '--admin-listen', `127.0.0.1:${CHAIN.gatewayAdminPort}`,
    '--cert', pki.gateway.cert,
    '--key', pki.gateway.key,
    '--trust-bundle', pki.meshCa,
    '--config-dir', config,
    '--replica', 'bench-gw',
    '--log-level', 'warn',
  ], { env: productionEnv() });
  const bound = { timeoutMs: 60_000 };
  await waitForListen(lab.gw, CHAIN.caPort, bound);
  await waitForListen(lab.gw, CHAIN.gatewayPort, bound);

  await mustExecInNetns(lab.pod, process.execPath, ['bin/egressd.js', 'init']);
  // The agent as production runs it: the bundle (scripts/build.ts) with its Node flags (src/agent/node-flags.ts), not the sources through tsx.
  const agent = spawnNodeInNetns(
    t,
    lab.pod,
    [
      ...(await productionAgentArgs()),
      '--config-dir', config,
      '--namespace', WORKLOAD.namespace,
      '--service-account', WORKLOAD.serviceAccount,
      '--ca-address', `${CHAIN.gwIp}:${CHAIN.caPort}`,
      '--ca-root-cert', pki.meshCa,
      '--token-file', tokenFile,
      '--egress-gateway', `${CHAIN.gwIp}:${CHAIN.gatewayPort}`,
      '--gateway-identity', GATEWAY_ID,
      '--log-level', 'warn',
    ],
    { uid: agentUid, env: productionEnv() },
  );
  // Ready means listeners up and a workload certificate held.
  await pollUntil(
    'the agent to be ready',
    async () => ((await execInNetns(lab.pod, 'curl', ['-sf', '-o', '/dev/null', 'http://127.0.0.1:15000/healthz/ready'])).code === 0 ? true : undefined),
    bound,
  ).catch((err: unknown) => {
    throw new Error(`agent not ready: ${agent.stderr().slice(-2000)}`, { cause: err });
  });
  return { controlPlane, gateway, agent };
}
