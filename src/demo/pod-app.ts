import { execInNetns, TSX_ARGS } from '../lab/netns.ts';
import type { DemoLab } from './pod-lab.ts';

/**
 * The application in the transparent demo's pod: real curl and a UDP
 * attempt, as UID 1000, with no proxy setting of any kind. Only curl's
 * --resolve stands in for the DNS answer the lab has no server for.
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
export function curlShown(url: string, address: string): string {
  const u = new URL(url);
  return `curl ${u.protocol === 'https:' ? '--cacert ca.pem ' : ''}--resolve ${u.hostname}:${defaultPort(u)}:${address} ${url}`;
}

export async function curlFromPod(lab: DemoLab, url: string, address: string): Promise<CurlResult> {
  const u = new URL(url);
  const args = ['-sS', '--max-time', '20', '--cacert', lab.caFile, '--resolve', `${u.hostname}:${defaultPort(u)}:${address}`, '-w', '\n%{http_code}', url];
  const r = await execInNetns(lab.topo.pod, 'curl', args, { uid: APP_UID, timeoutMs: 40_000 });
  const lines = r.stdout.split('\n');
  const code = Number(lines.pop());
  return { exit: r.code, status: code > 0 ? code : null, body: lines.join('\n'), error: r.stderr.trim() };
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
