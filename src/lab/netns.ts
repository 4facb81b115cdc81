import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { EgressdError } from '../core/errors.ts';

/**
 * Network namespaces for the transparent demo, the end-to-end tests and the
 * benchmarks (needs root and iproute2).
 *
 * Every namespace and process is registered with a TeardownHost (a test's
 * `t`, or the demo's teardown stack), so it is gone even when the run fails.
 * Names are `<prefix><random>` and stay within 15 characters. Nothing here
 * touches the host's network: addresses and rules live only inside the
 * namespaces a run creates.
 */

/** Whatever runs cleanup at the end of a run; ava's ExecutionContext fits, so does teardown.ts's TeardownStack. */
export interface TeardownHost {
  teardown(fn: () => unknown): void;
}

/** Repository root, the cwd of node children so `--import tsx` and relative paths resolve. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Node arguments that run a TypeScript file (tsx loader), e.g. `[...TSX_ARGS, 'src/x.ts']`. */
export const TSX_ARGS: readonly string[] = ['--import', 'tsx'];

const MAX_NAME = 15;

/** A unique name `<prefix><random>` of at most 15 characters (usable for namespaces and interfaces). */
export function uniqueName(prefix: string): string {
  const room = MAX_NAME - prefix.length;
  if (room < 4) throw new EgressdError('EGRESSD_ERR_LAB', `netns prefix "${prefix}" leaves fewer than 4 random characters in ${MAX_NAME}`);
  return prefix + randomBytes(8).toString('hex').slice(0, Math.min(room, 8));
}

export interface ExecOptions {
  /** Run as this UID (setpriv, groups cleared). */
  uid?: number;
  /** With uid: GID to run as (default: same number as uid). */
  gid?: number;
  /** With uid: capabilities kept across the UID change (inheritable + ambient), e.g. ['net_raw']. */
  ambientCaps?: readonly string[];
  /** Replaces the environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Written to stdin, then stdin is closed. */
  input?: string;
  /** Kill the command after this long (default 30 s); a bound, not an expectation. */
  timeoutMs?: number;
}

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** `ip netns exec NS [setpriv --reuid U --regid G --clear-groups] command args`, as argv. */
export function netnsArgv(ns: string, command: string, args: readonly string[], options: Pick<ExecOptions, 'uid' | 'gid' | 'ambientCaps'> = {}): string[] {
  const argv = ['ip', 'netns', 'exec', ns];
  if (options.uid !== undefined) {
    argv.push('setpriv', `--reuid=${options.uid}`, `--regid=${options.gid ?? options.uid}`, '--clear-groups');
    const caps = (options.ambientCaps ?? []).map((c) => `+${c}`).join(',');
    if (caps !== '') argv.push(`--inh-caps=${caps}`, `--ambient-caps=${caps}`);
    argv.push('--');
  }
  return [...argv, command, ...args];
}

function run(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env: options.env ?? process.env, cwd: options.cwd ?? REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

/** Runs a command to completion on the host (setup commands like `ip netns add`); throws on failure. */
export async function host(argv: readonly string[], options: ExecOptions = {}): Promise<string> {
  const result = await run(argv, options);
  if (result.code !== 0) throw new EgressdError('EGRESSD_ERR_LAB', `${argv.join(' ')} failed (${result.code ?? result.signal}): ${result.stderr.trim()}`);
  return result.stdout;
}

/** Runs a command in a namespace and returns its result whatever the exit code. */
export function execInNetns(ns: string, command: string, args: readonly string[] = [], options: ExecOptions = {}): Promise<ExecResult> {
  return run(netnsArgv(ns, command, args, options), options);
}

/** Like execInNetns, but a non-zero exit throws with the command's stderr. Returns stdout. */
export async function mustExecInNetns(ns: string, command: string, args: readonly string[] = [], options: ExecOptions = {}): Promise<string> {
  return host(netnsArgv(ns, command, args, options), options);
}

const probed = new Map<string, Promise<{ ok: boolean; reason: string }>>();

/**
 * Whether this machine can run network namespaces: root, and `ip netns add/exec/del`
 * work (probed once per prefix with a throwaway namespace of that prefix).
 */
export function canRunNetns(prefix: string): Promise<{ ok: boolean; reason: string }> {
  let result = probed.get(prefix);
  if (!result) {
    result = (async () => {
      if (process.getuid?.() !== 0) return { ok: false, reason: 'network namespaces need root' };
      const name = uniqueName(prefix);
      try {
        await host(['ip', 'netns', 'add', name]);
        try {
          await mustExecInNetns(name, 'setpriv', ['--reuid=1000', '--regid=1000', '--clear-groups', '--', 'true']);
        } finally {
          await host(['ip', 'netns', 'del', name]);
        }
        return { ok: true, reason: '' };
      } catch (err) {
        return { ok: false, reason: `ip netns unusable: ${(err as Error).message}` };
      }
    })();
    probed.set(prefix, result);
  }
  return result;
}

/** Kills what still runs in the namespace (only our own processes can be there), then deletes it. */
export async function deleteNetns(ns: string): Promise<void> {
  const pids = await run(['ip', 'netns', 'pids', ns]);
  for (const pid of pids.stdout.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await run(['ip', 'netns', 'del', ns]);
}

/** A new namespace with loopback up, deleted at teardown. Returns its name. */
export async function createNetns(t: TeardownHost, prefix: string): Promise<string> {
  const ns = uniqueName(prefix);
  await host(['ip', 'netns', 'add', ns]);
  t.teardown(() => deleteNetns(ns));
  await host(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  return ns;
}

export interface VethEnd {
  ns: string;
  /** Interface name inside that namespace (per-namespace, so `eth0` is fine). */
  ifname: string;
  /** Addresses with prefix length, e.g. `10.77.0.2/30`, `fd77::2/64`. */
  addresses: readonly string[];
}

/**
 * A veth pair created directly inside two namespaces (no interface ever
 * appears in the host's namespace), addressed and up. IPv6 addresses skip
 * duplicate address detection so they are usable at once.
 */
export async function connectVeth(a: VethEnd, b: VethEnd): Promise<void> {
  await host(['ip', '-n', a.ns, 'link', 'add', a.ifname, 'type', 'veth', 'peer', 'name', b.ifname, 'netns', b.ns]);
  for (const end of [a, b]) {
    for (const address of end.addresses) await addAddress(end.ns, address, end.ifname);
    await host(['ip', '-n', end.ns, 'link', 'set', end.ifname, 'up']);
  }
}

/** Adds an address (with prefix length) to an interface of a namespace, e.g. a server address on `lo`. */
export async function addAddress(ns: string, cidr: string, ifname: string): Promise<void> {
  const v6 = cidr.includes(':');
  await host(['ip', '-n', ns, ...(v6 ? ['-6'] : []), 'addr', 'add', cidr, 'dev', ifname, ...(v6 ? ['nodad'] : [])]);
}

/** Default route of a namespace via a gateway address (IPv4 or IPv6). */
export async function addDefaultRoute(ns: string, via: string): Promise<void> {
  await host(['ip', '-n', ns, ...(via.includes(':') ? ['-6'] : []), 'route', 'add', 'default', 'via', via]);
}

export interface WaitOptions {
  /** Give up after this long (default 15 s); a bound, not an expectation. */
  timeoutMs?: number;
}

/** Polls until `check` returns a value other than undefined, or throws `what` after the bound. */
export async function pollUntil<T>(what: string, check: () => Promise<T | undefined>, options: WaitOptions = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new EgressdError('EGRESSD_ERR_LAB', `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** Waits until something listens on `port` (any address) in the namespace, per `ss`. */
export async function waitForListen(ns: string, port: number, options: WaitOptions & { protocol?: 'tcp' | 'udp' } = {}): Promise<void> {
  const flag = options.protocol === 'udp' ? '-Hlnu' : '-Hlnt';
  await pollUntil(
    `${options.protocol ?? 'tcp'} port ${port} listening in ${ns}`,
    async () => ((await execInNetns(ns, 'ss', [flag, `sport = :${port}`])).stdout.trim() !== '' ? true : undefined),
    options,
  );
}

export interface NetnsProcess {
  readonly pid: number;
  /** Stdout lines received so far. */
  readonly lines: readonly string[];
  /** Stderr received so far. */
  stderr(): string;
  /** Resolves with the first stdout line (past or future) that matches; rejects on exit or after the bound. */
  waitForLine(match: (line: string) => boolean, options?: WaitOptions): Promise<string>;
  /** Exit status once the process is gone. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL if it is still there after `graceMs` (default 5 s). Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts a long-running process in a namespace (optionally as a UID), stopped
 * at teardown. `ip netns exec` and `setpriv` exec in place, so the pid is the
 * command's own.
 */
export function spawnInNetns(t: TeardownHost, ns: string, command: string, args: readonly string[] = [], options: Omit<ExecOptions, 'input' | 'timeoutMs'> = {}): NetnsProcess {
  const argv = netnsArgv(ns, command, args, options);
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { env: options.env ?? process.env, cwd: options.cwd ?? REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    const parts = (partial + d).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    for (const w of waiters) w();
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => {
      done = true;
      resolve({ code, signal });
      for (const w of waiters) w();
    });
    child.on('error', (err) => {
      done = true;
      stderr += String(err);
      resolve({ code: null, signal: null });
      for (const w of waiters) w();
    });
  });
  const stop = async (graceMs = 5_000): Promise<void> => {
    if (done) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  t.teardown(() => stop());
  return {
    pid: child.pid ?? -1,
    lines,
    stderr: () => stderr,
    exited,
    stop,
    waitForLine(match, waitOptions = {}) {
      return new Promise((resolve, reject) => {
        const timeoutMs = waitOptions.timeoutMs ?? 15_000;
        const finish = (fn: () => void): void => {
          waiters.delete(check);
          clearTimeout(timer);
          fn();
        };
        const check = (): void => {
          const line = lines.find(match);
          if (line !== undefined) finish(() => resolve(line));
          else if (done) finish(() => reject(new EgressdError('EGRESSD_ERR_LAB', `${argv.slice(4).join(' ')} exited before the expected line; stderr: ${stderr.trim()}`)));
        };
        const timer = setTimeout(() => finish(() => reject(new EgressdError('EGRESSD_ERR_LAB', `timed out after ${timeoutMs} ms waiting for a line from ${argv.slice(4).join(' ')}; stderr: ${stderr.trim()}`))), timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}

/**
 * A Node process in a namespace, e.g. the agent:
 * `spawnNodeInNetns(t, pod, ['bin/egressd.js', 'agent', ...], { uid: 1337 })`, or a
 * TypeScript file: `spawnNodeInNetns(t, ns, [...TSX_ARGS, 'test/x.ts'])`. Relative paths are from REPO_ROOT.
 */
export function spawnNodeInNetns(t: TeardownHost, ns: string, args: readonly string[], options: Omit<ExecOptions, 'input' | 'timeoutMs'> = {}): NetnsProcess {
  return spawnInNetns(t, ns, process.execPath, args, { cwd: REPO_ROOT, ...options });
}
