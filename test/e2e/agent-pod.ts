import { chown, chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readAuditFile, type AuditRecord } from '../../src/core/audit.ts';
import {
  addServerAddress,
  createPodInternet,
  createTestPki,
  execInNetns,
  mustExecInNetns,
  pollUntil,
  spawnNodeInNetns,
  startServers,
  REPO_ROOT,
  TSX_ARGS,
  type NetnsProcess,
  type PodInternet,
  type RunningServers,
  type TeardownHost,
  type TestPki,
} from './harness/index.ts';
import type { ClientResult, ClientSpec } from './agent-client.ts';

/**
 * A pod the way egressd runs it, for agent.test.ts: the real `egressd init`
 * rules in the pod namespace, the real `egressd agent` as UID 1337 reading a
 * ServiceEntry directory and appending to an audit log the test reads back,
 * and servers in the "internet" namespace. Everything goes at teardown.
 */

export const APP_UID = 1000;
export const AGENT_UID = 1337;
export const NAMESPACE = 'shop';
export const API_HOST = 'api.example.test';
/** An address only the `tcp-db` ServiceEntry lists (on port 7000). */
export const DB_IP = '192.168.77.10';
export const TCP_PORT = 7000;

/**
 * `api.example.test` on 443 and 80, reached at the internet namespace's IPv4
 * address. STATIC with endpoints and no `addresses`: the name decides (another
 * name sent to the same IP is refused), and the route works whether it dials
 * the address the client dialled or the endpoint. `tcp-db` allows raw TCP to
 * one address by its `addresses` block, for contrast with the address nothing lists.
 */
function allowlist(topo: PodInternet): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: demo-api
  namespace: ${NAMESPACE}
spec:
  hosts: [${API_HOST}]
  ports:
    - { number: 443, name: https, protocol: HTTPS }
    - { number: 80, name: http, protocol: HTTP }
  location: MESH_EXTERNAL
  resolution: STATIC
  endpoints:
    - address: ${topo.internetIp}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: tcp-db
  namespace: ${NAMESPACE}
spec:
  hosts: [db.internal.test]
  addresses: [${DB_IP}/32]
  ports:
    - { number: ${TCP_PORT}, name: tcp-db, protocol: TCP }
  location: MESH_EXTERNAL
  resolution: STATIC
  endpoints:
    - address: ${DB_IP}
`;
}

export interface Agent {
  process: NetnsProcess;
  auditFile: string;
}

export interface AgentPod {
  topo: PodInternet;
  pki: TestPki;
  servers: RunningServers;
  configDir: string;
  /** Starts `egressd agent` as UID 1337 with its own audit file; resolves once /healthz/ready answers 200. */
  startAgent(): Promise<Agent>;
}

export async function createAgentPod(t: TeardownHost, prefix: string): Promise<AgentPod> {
  const topo = await createPodInternet(t, prefix);
  await addServerAddress(topo, DB_IP);
  const pki = await createTestPki(t, [API_HOST, topo.internetIp, topo.internetIp6]);
  const servers = await startServers(t, topo.internet, {
    name: 'internet',
    certFile: pki.certFile,
    keyFile: pki.keyFile,
    servers: [
      { kind: 'https', host: '::', port: 443 },
      { kind: 'http', host: '::', port: 80 },
      { kind: 'tcp', host: '::', port: TCP_PORT },
    ],
  });

  const dir = await mkdtemp(join(tmpdir(), 'egressd-e2e-agent-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o755);
  const configDir = join(dir, 'config');
  const auditDir = join(dir, 'audit');
  await mkdir(configDir, { mode: 0o755 });
  await mkdir(auditDir, { mode: 0o755 });
  await chown(auditDir, AGENT_UID, AGENT_UID);
  await writeFile(join(configDir, 'allowlist.yaml'), allowlist(topo), { mode: 0o644 });

  await mustExecInNetns(topo.pod, process.execPath, ['bin/egressd.js', 'init'], { cwd: REPO_ROOT });

  let runs = 0;
  const startAgent = async (): Promise<Agent> => {
    // --peek-timeout-ms well above the default: on a loaded machine a client may take more than 200 ms to send its
    // ClientHello after connecting, and would then be judged on its IP alone; these tests are about names.
    const auditFile = join(auditDir, `audit-${++runs}.log`);
    const proc = spawnNodeInNetns(
      t,
      topo.pod,
      ['bin/egressd.js', 'agent', '--config-dir', configDir, '--audit-log', auditFile, '--namespace', NAMESPACE, '--peek-timeout-ms', '3000', '--log-level', 'warn'],
      { uid: AGENT_UID },
    );
    await pollUntil(
      'the agent to report ready',
      async () => {
        if (await exitedYet(proc)) throw new Error(`the agent exited: ${proc.stderr().trim()}`);
        const r = await execInNetns(topo.pod, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', 'http://127.0.0.1:15000/healthz/ready']);
        return r.stdout === '200' ? true : undefined;
      },
      { timeoutMs: 90_000 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; agent stderr: ${proc.stderr().trim()}`);
    });
    return { process: proc, auditFile };
  };
  return { topo, pki, servers, configDir, startAgent };
}

function exitedYet(proc: NetnsProcess): Promise<boolean> {
  return Promise.race([proc.exited.then(() => true), new Promise<boolean>((resolve) => setImmediate(() => resolve(false)))]);
}


/** The first record written after the first `since` records that `match` accepts, polled for up to 30 s. */
export function waitForRecord(agent: Agent, match: (r: AuditRecord) => boolean, since = 0): Promise<AuditRecord> {
  return pollUntil(`an audit record in ${agent.auditFile}`, async () => (await readAuditFile(agent.auditFile)).slice(since).find(match), { timeoutMs: 30_000 });
}

/** One Node HTTP(S) request from the pod, as `uid` (see agent-client.ts). */
export async function nodeClient(ns: string, spec: ClientSpec, uid = APP_UID): Promise<ClientResult> {
  const script = new URL('./agent-client.ts', import.meta.url).pathname;
  const r = await execInNetns(ns, process.execPath, [...TSX_ARGS, script, JSON.stringify(spec)], { uid, cwd: REPO_ROOT, timeoutMs: (spec.timeoutMs ?? 15_000) + 30_000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as ClientResult;
  } catch {
    throw new Error(`agent-client printed no result (exit ${r.code ?? r.signal}): ${r.stderr.trim()}`);
  }
}

/** curl in the pod as `uid`, resolving `host:port` to `address` itself (`--resolve`), bounded by --max-time. */
export function curl(pod: AgentPod, url: string, address: string, extra: readonly string[] = [], uid = APP_UID): ReturnType<typeof execInNetns> {
  const { hostname, port, protocol } = new URL(url);
  const p = port !== '' ? port : protocol === 'https:' ? '443' : '80';
  const addr = address.includes(':') ? `[${address}]` : address;
  return execInNetns(pod.topo.pod, 'curl', ['-sS', '--max-time', '20', '--cacert', pod.pki.caFile, '--resolve', `${hostname}:${p}:${addr}`, ...extra, url], { uid, timeoutMs: 40_000 });
}
