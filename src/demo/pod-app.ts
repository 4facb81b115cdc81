import { execInNetns, TSX_ARGS } from '../lab/netns.ts';
import type { DemoLab } from './pod-lab.ts';

/**
 * The application in the transparent demo's pod: real curl, dig and a UDP
 * attempt, as UID 1000, with no proxy setting of any kind. curl's --resolve
 * gives it the real address, as the agent's --resolve does; without it, the
 * pod's resolver (the agent) gives a virtual IP.
 */
export const APP_UID = 1000;

export interface CurlResult {
  /** curl's exit code: 0, 35 (TLS handshake failed), 7 (could not connect)... */
  exit: number | null;
  /** HTTP status, null when no response came. */
  status: number | null;
  body: string;
  /** What curl printed on stderr. */
  error: string;
}

function defaultPort(url: URL): string {
  return url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80';
}

/** The command line as the reader would type it (the CA file shortened). */
export function curlShown(url: string, address?: string): string {
  const u = new URL(url);
  const resolve = address === undefined ? '' : `--resolve ${u.hostname}:${defaultPort(u)}:${address} `;
  return `curl ${u.protocol === 'https:' ? '--cacert ca.pem ' : ''}${resolve}${url}`;
}

/** `address`: curl's --resolve; without it curl asks the pod's resolver, which the rules hand to the agent. */
export async function curlFromPod(lab: DemoLab, url: string, address?: string): Promise<CurlResult> {
  const u = new URL(url);
  const resolve = address === undefined ? [] : ['--resolve', `${u.hostname}:${defaultPort(u)}:${address}`];
  const args = ['-sS', '--max-time', '20', '--cacert', lab.caFile, ...resolve, '-w', '\n%{http_code}', url];
  const r = await execInNetns(lab.topo.pod, 'curl', args, { uid: APP_UID, timeoutMs: 40_000 });
  const lines = r.stdout.split('\n');
  const code = Number(lines.pop());
  return { exit: r.code, status: code > 0 ? code : null, body: lines.join('\n'), error: r.stderr.trim() };
}

/**
 * Two plain HTTP requests on one kept-alive connection (curl --next reuses
 * it), the second with its Host header set to `secondHost`: what a client
 * does to reach another site behind the same address. The results in order.
 */
export async function keepAliveFromPod(lab: DemoLab, url: string, address: string, secondHost: string): Promise<CurlResult[]> {
  const u = new URL(url);
  const each = ['-sS', '--max-time', '20', '-w', '\n%{http_code}\n'];
  // Options end at --next, but the connection (found by host name and port, before any lookup) is reused.
  const first = [...each, '--resolve', `${u.hostname}:${defaultPort(u)}:${address}`, url];
  const r = await execInNetns(lab.topo.pod, 'curl', [...first, '--next', ...each, '-H', `Host: ${secondHost}`, url], { uid: APP_UID, timeoutMs: 40_000 });
  // Each transfer prints its body and then its status line; curl's exit code is the last transfer's.
  const lines = r.stdout.split('\n');
  const at = lines.findIndex((l) => /^\d{3}$/.test(l));
  const firstStatus = at < 0 ? null : Number(lines[at]);
  const secondStatus = Number(lines.slice(at + 1).find((l) => /^\d{3}$/.test(l)) ?? 0);
  return [
    { exit: firstStatus === null ? r.code : 0, status: firstStatus, body: at < 0 ? '' : lines.slice(0, at).join('\n'), error: '' },
    { exit: r.code, status: secondStatus > 0 ? secondStatus : null, body: '', error: r.stderr.trim() },
  ];
}

/** keepAliveFromPod's command line as the reader would type it. */
export function keepAliveShown(url: string, address: string, secondHost: string): string {
  const u = new URL(url);
  const resolve = `--resolve ${u.hostname}:${defaultPort(u)}:${address}`;
  return `curl ${resolve} ${url} --next -H 'Host: ${secondHost}' ${url}`;
}

export interface UdpAttempt {
  outcome: 'answered' | 'error' | 'no_answer';
  detail: string;
  /** With outcome 'error': the errno code, e.g. EPERM. */
  code?: string;
}

/** One QUIC-like datagram to host:port from the pod as the application (udp-attempt-process.ts). */
export async function udpFromPod(lab: DemoLab, host: string, port: number): Promise<UdpAttempt> {
  const r = await execInNetns(lab.topo.pod, process.execPath, [...TSX_ARGS, 'src/demo/udp-attempt-process.ts', host, String(port)], { uid: APP_UID });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as UdpAttempt;
  } catch {
    return { outcome: 'error', code: 'NO_RESULT', detail: `the attempt printed no result (exit ${r.code ?? r.signal}): ${r.stderr.trim()}` };
  }
}

export interface DigResult {
  /** The answer's rcode as dig prints it (NOERROR, NXDOMAIN...), null when no answer came. */
  status: string | null;
  /** The A records' addresses. */
  addresses: string[];
  /** What dig printed: its header comments and answer section. */
  output: string;
}

/** The command line as the reader would type it. */
export function digShown(name: string): string {
  return `dig ${name} A`;
}

/**
 * An A query from the pod as the application, to the nameserver of the pod's
 * resolv.conf (the internet namespace, where nothing answers on 53):
 * `egressd init` redirects port 53 to the agent whatever nameserver is asked,
 * and a query that slipped past the rules would still stay in the lab.
 */
export async function digFromPod(lab: DemoLab, name: string): Promise<DigResult> {
  const args = ['+tries=1', '+time=5', '+noall', '+comments', '+answer', name, 'A'];
  const r = await execInNetns(lab.topo.pod, 'dig', args, { uid: APP_UID, timeoutMs: 20_000 });
  const status = /status: ([A-Z]+)/.exec(r.stdout)?.[1] ?? null;
  const addresses = r.stdout
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith(';'))
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[3] === 'A')
    .map((fields) => fields[4]!);
  return { status, addresses, output: `${r.stdout}${r.stderr}`.trim() };
}
