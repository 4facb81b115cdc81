import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connectVeth, createNetns, addDefaultRoute, mustExecInNetns, type TeardownHost } from '../../src/lab/index.ts';

/**
 * The chain benchmark's network, three namespaces of our own:
 *
 *   pod 10.79.1.2 ── 10.79.1.1 gw 10.79.2.1 ── 10.79.2.2 internet
 *
 * The pod's default route points at gw, which does not forward: the pod can
 * reach gw only, and only gw reaches the internet. Both pod and gw resolve
 * the destination's name through their own hosts file
 * (/etc/netns/<ns>/hosts, which `ip netns exec` mounts over /etc/hosts).
 */
export const CHAIN = {
  podIp: '10.79.1.2',
  gwIp: '10.79.1.1',
  gwInternetIp: '10.79.2.1',
  serverIp: '10.79.2.2',
  /** The destination's name, its HTTPS port, and the plain-HTTP port the application uses through egressd. */
  host: 'api.example.test',
  serverPort: 443,
  appPort: 80,
  /** In gw: egressd gateway (tunnels, admin), egressd control-plane (CA, admin), the gateway HAProxy. */
  gatewayPort: 15008,
  gatewayAdminPort: 15000,
  caPort: 15012,
  caAdminPort: 15014,
  haproxyGwPort: 18443,
  /** In the pod: the application's HAProxy, on loopback. */
  haproxyPodPort: 18080,
  /** Names in the certificates of the gateway HAProxy. */
  haproxyGwName: 'egress-gateway.bench.test',
} as const;

export interface ChainLab {
  pod: string;
  gw: string;
  internet: string;
}

async function writeHosts(t: TeardownHost, ns: string, lines: readonly string[]): Promise<void> {
  const etc = join('/etc/netns', ns);
  await mkdir(etc, { recursive: true });
  t.teardown(() => rm(etc, { recursive: true, force: true }));
  await writeFile(join(etc, 'hosts'), ['127.0.0.1 localhost', '::1 localhost', ...lines, ''].join('\n'));
}

/** Creates and wires the three namespaces (names `<prefix><random>`), all removed at teardown. */
export async function createChainLab(t: TeardownHost, prefix: string): Promise<ChainLab> {
  const pod = await createNetns(t, prefix);
  const gw = await createNetns(t, prefix);
  const internet = await createNetns(t, prefix);
  await connectVeth({ ns: pod, ifname: 'eth0', addresses: [`${CHAIN.podIp}/24`] }, { ns: gw, ifname: 'eth0', addresses: [`${CHAIN.gwIp}/24`] });
  await connectVeth({ ns: gw, ifname: 'eth1', addresses: [`${CHAIN.gwInternetIp}/24`] }, { ns: internet, ifname: 'eth0', addresses: [`${CHAIN.serverIp}/24`] });
  // A route out of the pod (so a connect to the destination reaches the agent's redirect), through a gw that forwards nothing.
  await addDefaultRoute(pod, CHAIN.gwIp);
  await mustExecInNetns(gw, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=0']);
  await writeHosts(t, pod, [`${CHAIN.serverIp} ${CHAIN.host}`]);
  await writeHosts(t, gw, [`${CHAIN.serverIp} ${CHAIN.host}`]);
  return { pod, gw, internet };
}
