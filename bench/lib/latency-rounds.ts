import { readFile } from 'node:fs/promises';
import { execInNetns, mustExecInNetns, TSX_ARGS } from '../../src/lab/index.ts';
import { cpuPlacement, pinnedCommand } from './cpu-pinning.ts';
import { h2loadRate } from './h2load-rate.ts';
import { mergeRounds, type PathResult, type ProcessFigures, type RoundResult } from './latency-report.ts';

/**
 * How the path benchmarks measure on a machine they share with other work:
 * each path first gets --warmup seconds of the same load (not counted: Node's
 * JIT warms up, pools fill), then the paths take turns in --rounds rounds, so
 * a burst of the machine's other work lands on each of them alike, and each
 * path's percentiles are taken over all its rounds' latencies together.
 */
export interface LoadFlags {
  /** Measured seconds per path, split across the rounds. */
  seconds: number;
  rps: number;
  conns: number;
  warmup: number;
  rounds: number;
  /** What generates the load: the Node client (load-client.ts) or h2load (h2load-rate.ts). */
  client: 'node' | 'h2load';
}

/** parseArgs options for the flags above, with their defaults. */
export const LOAD_FLAG_OPTIONS = {
  seconds: { type: 'string', default: '10' },
  rps: { type: 'string', default: '1000' },
  conns: { type: 'string', default: '16' },
  warmup: { type: 'string', default: '3' },
  rounds: { type: 'string', default: '5' },
  client: { type: 'string', default: 'node' },
} as const;

/** The flags as numbers, and what is wrong with them (empty when nothing). */
export function readLoadFlags(values: Record<keyof LoadFlags, string>): { flags: LoadFlags; bad: string[] } {
  const flags: LoadFlags = {
    seconds: Number(values.seconds),
    rps: Number(values.rps),
    conns: Number(values.conns),
    warmup: Number(values.warmup),
    rounds: Number(values.rounds),
    client: values.client === 'h2load' ? 'h2load' : 'node',
  };
  const bad = (['seconds', 'rps', 'conns', 'rounds'] as const)
    .filter((name) => !(flags[name] > 0) || !Number.isFinite(flags[name]))
    .map((name) => `--${name} must be a positive number`)
    .concat(flags.warmup >= 0 && Number.isFinite(flags.warmup) ? [] : ['--warmup must be 0 or more'])
    .concat(Number.isInteger(flags.rounds) && Number.isInteger(flags.conns) ? [] : ['--rounds and --conns must be whole numbers'])
    .concat(values.client === 'node' || values.client === 'h2load' ? [] : ['--client must be node or h2load']);
  return { flags, bad };
}

export interface LoadPath<N extends string = string> {
  name: N;
  ns: string;
  uid?: number;
  /** What the load client dials, whether with TLS, and load-client.ts's options. */
  host: string;
  port: number;
  https?: boolean;
  extra: string[];
  /** The same request by curl, to fail loudly before measuring a path that does not work. */
  curl: string[];
  /** Processes whose CPU is charged to this path. */
  pids: Array<{ name: string; pid: number }>;
}

const asUid = (path: LoadPath): { uid?: number } => (path.uid === undefined ? {} : { uid: path.uid });

/** One GET by curl on the path: a 200 with 1,024 bytes, or the run stops with what curl saw. */
export async function preflight(path: LoadPath): Promise<void> {
  const result = await execInNetns(path.ns, 'curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', '--max-time', '10', ...path.curl], asUid(path));
  if (result.stdout.trim() !== '200 1024') throw new Error(`${path.name}: preflight GET answered "${result.stdout.trim()}" ${result.stderr.trim()}`);
}

/** A load-client.ts run on the path (`rate ...` or `bulk ...`), its JSON line parsed. */
export async function loadClient<T>(path: LoadPath, args: readonly string[], timeoutSeconds: number): Promise<T> {
  const [command, commandArgs] = pinnedCommand(process.execPath, [...TSX_ARGS, 'bench/lib/load-client.ts', ...args, ...path.extra], cpuPlacement()?.load);
  const out = await mustExecInNetns(path.ns, command, commandArgs, {
    ...asUid(path),
    timeoutMs: (timeoutSeconds + 120) * 1000,
  });
  return JSON.parse(out) as T;
}

/** load-client.ts `rate --latencies` on the path for `seconds`. */
function rate(path: LoadPath, flags: LoadFlags, seconds: number): Promise<RoundResult> {
  if (flags.client === 'h2load') return h2loadRate(path, { rps: flags.rps, conns: flags.conns, seconds }, cpuPlacement()?.load);
  return loadClient<RoundResult>(path, ['rate', path.host, String(path.port), String(flags.rps), String(seconds), String(flags.conns), '--latencies'], seconds);
}

/** CPU seconds so far (user + system) and peak RSS (VmHWM) of a process. */
export interface Usage {
  cpuSeconds: number;
  peakRssMiB: number;
}

export async function usage(pid: number): Promise<Usage> {
  // Fields after the command name, which may hold spaces: utime and stime are the 12th and 13th.
  const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  const ticks = Number(stat[11]) + Number(stat[12]);
  const hwm = /VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1];
  // USER_HZ is 100 on every Linux this runs on (sysconf(_SC_CLK_TCK) is not reachable from Node).
  return { cpuSeconds: ticks / 100, peakRssMiB: Number(hwm) / 1024 };
}

/** Runs `step` for each round and each path in turn (path order within a round), collecting each path's results in order. */
export async function interleave<N extends string, T>(paths: ReadonlyArray<LoadPath<N>>, rounds: number, step: (path: LoadPath<N>, round: number) => Promise<T>): Promise<Map<N, T[]>> {
  const results = new Map<N, T[]>(paths.map((p) => [p.name, []]));
  for (let i = 0; i < rounds; i++) {
    for (const path of paths) results.get(path.name)!.push(await step(path, i));
  }
  return results;
}

export interface LatencyFigures<N extends string> {
  paths: Record<N, PathResult>;
  /** CPU per 1,000 requests over the measured rounds, and peak RSS at the end, of every path's processes. */
  processes: ProcessFigures[];
}

/**
 * Preflight and warm-up of every path, then the measured rounds, each round's
 * p99 reported to `log` as it comes. Each path's processes are charged the CPU
 * they spent during that path's rounds only.
 */
export async function measureLatency<N extends string>(paths: ReadonlyArray<LoadPath<N>>, flags: LoadFlags, log: (line: string) => void): Promise<LatencyFigures<N>> {
  for (const path of paths) {
    await preflight(path);
    if (flags.warmup > 0) await rate(path, flags, flags.warmup);
  }
  const cpu = new Map<string, number>();
  const rounds = await interleave(paths, flags.rounds, async (path, i) => {
    const before = await Promise.all(path.pids.map((p) => usage(p.pid)));
    const result = await rate(path, flags, flags.seconds / flags.rounds);
    const after = await Promise.all(path.pids.map((p) => usage(p.pid)));
    path.pids.forEach((p, j) => cpu.set(p.name, (cpu.get(p.name) ?? 0) + after[j]!.cpuSeconds - before[j]!.cpuSeconds));
    log(`round ${i + 1}/${flags.rounds} ${path.name}: p99 ${result.p99_ms.toFixed(2)} ms, ${result.errors} errors`);
    return result;
  });
  const merged = Object.fromEntries(paths.map((p) => [p.name, mergeRounds(rounds.get(p.name)!)])) as Record<N, PathResult>;
  const processes: ProcessFigures[] = [];
  for (const path of paths) {
    for (const p of path.pids) {
      processes.push({ name: p.name, cpuPer1k: (cpu.get(p.name)! / merged[path.name].requests) * 1000, peakRssMiB: (await usage(p.pid)).peakRssMiB });
    }
  }
  return { paths: merged, processes };
}
