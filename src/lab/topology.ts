import { addAddress, addDefaultRoute, connectVeth, createNetns, type TeardownHost } from './netns.ts';

/**
 * The usual egress picture: a "pod" namespace whose only way out is one veth
 * to an "internet" namespace that hosts the servers. Fixed addresses are fine
 * because every topology lives in its own namespaces:
 *
 *   pod  eth0 10.77.0.2/30  fd77::2/64  --- default route --->  internet eth0 10.77.0.1/30  fd77::1/64
 *
 * More server addresses go on the internet namespace's `lo` (addServerAddress),
 * e.g. 192.168.77.10: the pod reaches them through its default route.
 */
export interface PodInternet {
  pod: string;
  internet: string;
  podIp: string;
  internetIp: string;
  podIp6: string;
  internetIp6: string;
}

export const POD_INTERNET_ADDRESSES = {
  podIp: '10.77.0.2',
  internetIp: '10.77.0.1',
  podIp6: 'fd77::2',
  internetIp6: 'fd77::1',
} as const;

/** Creates both namespaces (names `<prefix><random>`), wired and routed; deleted at teardown. */
export async function createPodInternet(t: TeardownHost, prefix: string): Promise<PodInternet> {
  const pod = await createNetns(t, prefix);
  const internet = await createNetns(t, prefix);
  const a = POD_INTERNET_ADDRESSES;
  await connectVeth(
    { ns: pod, ifname: 'eth0', addresses: [`${a.podIp}/30`, `${a.podIp6}/64`] },
    { ns: internet, ifname: 'eth0', addresses: [`${a.internetIp}/30`, `${a.internetIp6}/64`] },
  );
  await addDefaultRoute(pod, a.internetIp);
  await addDefaultRoute(pod, a.internetIp6);
  return { pod, internet, ...a };
}

/** Another address servers in the internet namespace can bind (IPv4 /32 or IPv6 /128 on lo). */
export async function addServerAddress(topology: PodInternet, address: string): Promise<void> {
  await addAddress(topology.internet, `${address}/${address.includes(':') ? 128 : 32}`, 'lo');
}
