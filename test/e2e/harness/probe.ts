import { REPO_ROOT, TSX_ARGS, execInNetns } from '../../../src/lab/netns.ts';

/**
 * One client exchange from inside a namespace, optionally as a UID (an
 * application in the pod): TCP connects, sends `send` and reads to the end;
 * UDP (connected socket) sends and waits for one answer. Errors are results
 * (ECONNREFUSED for a REJECT or a closed port, ETIMEDOUT after the bound).
 */
export interface ProbeSpec {
  kind: 'tcp' | 'udp';
  host: string;
  port: number;
  send?: string;
  /** Bound on the whole exchange (default 5000 ms). */
  timeoutMs?: number;
}

export type ProbeResult = { ok: true; data: string } | { ok: false; code: string; message: string };

const SCRIPT = new URL('./probe-process.ts', import.meta.url).pathname;

export async function probe(ns: string, spec: ProbeSpec, options: { uid?: number; gid?: number } = {}): Promise<ProbeResult> {
  const result = await execInNetns(ns, process.execPath, [...TSX_ARGS, SCRIPT, JSON.stringify(spec)], { ...options, cwd: REPO_ROOT, timeoutMs: (spec.timeoutMs ?? 5000) + 30_000 });
  const line = result.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as ProbeResult;
  } catch {
    throw new Error(`probe ${JSON.stringify(spec)} printed no result (exit ${result.code ?? result.signal}): ${result.stderr.trim()}`);
  }
}

/** One raw IP packet: ICMP echo when protocol is 1 (IPv4) or 58 (IPv6), else 16 zero bytes of that protocol (132: SCTP). */
export interface RawSendSpec {
  host: string;
  protocol: number;
}

export type RawSendResult = { ok: true; sent: number } | { ok: false; code: string; stage: 'socket' | 'sendto' };

const RAW_SCRIPT = new URL('./raw-send-process.ts', import.meta.url).pathname;

/**
 * Sends one raw packet from `ns` as `uid` holding CAP_NET_RAW (which container
 * runtimes grant by default), i.e. what an application could try in order to
 * get around a TCP/UDP-only interception. A netfilter REJECT/DROP shows as EPERM.
 */
export async function rawSend(ns: string, spec: RawSendSpec, options: { uid: number; gid?: number }): Promise<RawSendResult> {
  const result = await execInNetns(ns, process.execPath, [...TSX_ARGS, RAW_SCRIPT, JSON.stringify(spec)], { ...options, ambientCaps: ['net_raw'], cwd: REPO_ROOT });
  const line = result.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as RawSendResult;
  } catch {
    throw new Error(`rawSend ${JSON.stringify(spec)} printed no result (exit ${result.code ?? result.signal}): ${result.stderr.trim()}`);
  }
}

/** The JSON a harness server answered with (first line of `data`). */
export function answer<T = Record<string, unknown>>(result: ProbeResult): T {
  if (!result.ok) throw new Error(`probe failed: ${result.code} ${result.message}`);
  return JSON.parse(result.data.split('\n')[0] ?? '') as T;
}
