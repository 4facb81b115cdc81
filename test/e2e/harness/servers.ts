import { REPO_ROOT, TSX_ARGS, spawnInNetns, type NetnsProcess, type TeardownHost, type WaitOptions } from '../../../src/lab/netns.ts';

/**
 * Real servers in a namespace (usually the "internet" one), in one child
 * process running servers-process.ts:
 * - `http` / `https`: answer every request 200 with JSON {server, kind, method, url, host, sni, remoteAddress, localAddress, localPort};
 * - `tcp`: answers each connection with one JSON line {server, kind, localAddress, localPort, remoteAddress, originalDst}
 *   and closes; originalDst is SO_ORIGINAL_DST (null when not redirected), so a `tcp` server on
 *   15001 in the pod namespace stands in for the agent;
 * - `udp`: answers each datagram with JSON {server, kind, localPort, from, payload}.
 * Every event is also a JSON line on the process's stdout (`events()`).
 */
export interface ServerSpec {
  kind: 'http' | 'https' | 'tcp' | 'udp';
  /** Address to bind, e.g. '0.0.0.0', '::' (both families), '10.77.0.1'. */
  host: string;
  port: number;
}

export interface ServersConfig {
  /** Reported in every answer, to tell servers apart. */
  name: string;
  servers: ServerSpec[];
  /** PEM files for `https` (see certs.ts createTestPki). */
  certFile?: string;
  keyFile?: string;
}

export interface ServerEvent {
  event: 'listening' | 'ready' | 'request' | 'connection' | 'datagram';
  [field: string]: unknown;
}

export interface RunningServers {
  process: NetnsProcess;
  /** Events so far, parsed. */
  events(): ServerEvent[];
  /** Resolves with the first event (past or future) that matches. */
  waitForEvent(match: (e: ServerEvent) => boolean, options?: WaitOptions): Promise<ServerEvent>;
}

const SCRIPT = new URL('./servers-process.ts', import.meta.url).pathname;

function parse(line: string): ServerEvent | undefined {
  try {
    return JSON.parse(line) as ServerEvent;
  } catch {
    return undefined;
  }
}

/** Starts the servers in `ns` (as root unless `uid`), resolves once all listen; stopped at teardown. */
export async function startServers(t: TeardownHost, ns: string, config: ServersConfig, options: { uid?: number; gid?: number } = {}): Promise<RunningServers> {
  const proc = spawnInNetns(t, ns, process.execPath, [...TSX_ARGS, SCRIPT, JSON.stringify(config)], { ...options, cwd: REPO_ROOT });
  const running: RunningServers = {
    process: proc,
    events: () => proc.lines.map(parse).filter((e): e is ServerEvent => e !== undefined),
    async waitForEvent(match, waitOptions) {
      const line = await proc.waitForLine((l) => {
        const e = parse(l);
        return e !== undefined && match(e);
      }, waitOptions);
      return parse(line)!;
    },
  };
  await running.waitForEvent((e) => e.event === 'ready');
  return running;
}
