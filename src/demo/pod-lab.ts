import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_DEFAULTS } from '../agent/agent-config.ts';
import { EgressdError } from '../core/errors.ts';
import { DEFAULT_AGENT_UID } from '../iptables/options.ts';
import { execInNetns, mustExecInNetns, pollUntil, spawnNodeInNetns, TSX_ARGS, type NetnsProcess, type TeardownHost } from '../lab/netns.ts';
import { createPodInternet, type PodInternet } from '../lab/topology.ts';

/**
 * The transparent demo's pod, built the way egressd runs in a cluster: a pod
 * network namespace whose only way out is an "internet" namespace holding the
 * stand-in for api.example.test, the real `egressd init` rules, the real
 * `egressd agent` as UID 1337. Everything is registered with the TeardownHost.
 */
export const API_HOST = 'api.example.test';
/** `egressd init` runs with its defaults, so the agent must be the UID they exempt. */
export const AGENT_UID = DEFAULT_AGENT_UID;
export const ADMIN_URL = `http://127.0.0.1:${AGENT_DEFAULTS.adminPort}`;
/** Cold starts through tsx on a busy machine can take tens of seconds: a bound, not an expectation. */
const START_BOUND_MS = 90_000;

export interface DemoLab {
  topo: PodInternet;
  /** The external API's throwaway CA, readable by the application's UID. */
  caFile: string;
  /** The agent's --audit-log, in a directory only the agent's UID may write. */
  auditFile: string;
  /**
   * The pod's resolv.conf (/etc/netns/<pod>/resolv.conf) and the agent's
   * --resolv-conf: the internet namespace's address, where nothing listens
   * on 53. The agent answers every name the demo asks itself (a VIP, or
   * NXDOMAIN), so nothing is forwarded, and a query that were would stay in the lab.
   */
  resolvConf: string;
}

export async function createDemoLab(td: TeardownHost, netnsPrefix: string): Promise<DemoLab> {
  const topo = await createPodInternet(td, netnsPrefix);
  const dir = await mkdtemp(join(tmpdir(), 'egressd-demo-'));
  td.teardown(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o755);
  const auditDir = join(dir, 'audit');
  await mkdir(auditDir, { mode: 0o755 });
  await chown(auditDir, AGENT_UID, AGENT_UID);
  const caFile = join(dir, 'ca.pem');
  const api = spawnNodeInNetns(td, topo.internet, [...TSX_ARGS, 'src/demo/external-api-process.ts', caFile]);
  await api.waitForLine((line) => line.includes('"ready"'), { timeoutMs: START_BOUND_MS });
  // What `ip netns exec` shows the pod's processes as /etc/resolv.conf, and the
  // agent's --resolv-conf: a nameserver in the lab, not the host's resolver.
  const etc = join('/etc/netns', topo.pod);
  await mkdir(etc, { recursive: true });
  td.teardown(() => rm(etc, { recursive: true, force: true }));
  const resolvConf = join(etc, 'resolv.conf');
  await writeFile(resolvConf, `nameserver ${topo.internetIp}\noptions timeout:2 attempts:1\n`, { mode: 0o644 });
  return { topo, caFile, auditFile: join(auditDir, 'audit.log'), resolvConf };
}

/** Runs the real `egressd init` (as root, like the init container) in the pod namespace; returns what it printed. */
export function installInit(lab: DemoLab): Promise<string> {
  return mustExecInNetns(lab.topo.pod, process.execPath, ['bin/egressd.js', 'init']);
}

/**
 * The agent's flags. deploy/examples says `resolution: DNS` for api.example.test
 * and the lab has no DNS server, so --resolve gives the agent the answer DNS
 * would. --dns-auto-allocate lets its DNS proxy answer api.example.test with a
 * virtual IP, so the pod's lookups need no upstream either. --peek-timeout-ms is raised so that a client slowed down by a busy
 * machine is still judged by its SNI, not by its address alone.
 */
export function agentArgs(lab: DemoLab): string[] {
  const ip = lab.topo.internetIp;
  return [
    'agent',
    '--config-dir', 'deploy/examples',
    '--namespace', 'default',
    '--audit-log', lab.auditFile,
    '--resolve', `${API_HOST}:443:${ip}`,
    '--resolve', `${API_HOST}:80:${ip}`,
    '--resolv-conf', lab.resolvConf,
    '--dns-auto-allocate',
    '--peek-timeout-ms', '3000',
    '--log-level', 'warn',
  ];
}

/** Starts `egressd agent` as UID 1337 in the pod namespace; resolves once its admin port reports ready. */
export async function startPodAgent(td: TeardownHost, lab: DemoLab): Promise<NetnsProcess> {
  const agent = spawnNodeInNetns(td, lab.topo.pod, ['bin/egressd.js', ...agentArgs(lab)], { uid: AGENT_UID });
  let exited = false;
  void agent.exited.then(() => (exited = true));
  await pollUntil(
    'the agent to report ready',
    async () => {
      if (exited) throw new EgressdError('EGRESSD_ERR_LAB', `the agent exited: ${agent.stderr().trim()}`);
      const r = await execInNetns(lab.topo.pod, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', `${ADMIN_URL}/healthz/ready`]);
      return r.stdout === '200' ? true : undefined;
    },
    { timeoutMs: START_BOUND_MS },
  );
  return agent;
}

