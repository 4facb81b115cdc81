import { execFile } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';

/**
 * Where the path benchmarks put their processes. On a machine with few CPUs
 * the load client, the server and the proxy under test fight for the same
 * cores, and a proxy woken late by the scheduler adds milliseconds that are
 * not its own. So, as a sidecar has its CPU share in a pod, every proxy under
 * test (egressd's agent and gateway, HAProxy) runs on the last CPU, and the
 * load client and the servers on the others: the same placement for every
 * path, direct included. With one CPU, or BENCH_PIN=off, nothing is pinned.
 */
export interface CpuPlacement {
  /** taskset CPU list for load clients and servers. */
  load: string;
  /** taskset CPU list for the proxies under test. */
  proxy: string;
}

export function cpuPlacement(cpus = availableParallelism()): CpuPlacement | undefined {
  // BENCH_PIN=off leaves placement to the scheduler, to compare the two on a given machine.
  if (cpus < 2 || process.env.BENCH_PIN === 'off') return undefined;
  const last = cpus - 1;
  return { load: last === 1 ? '0' : `0-${last - 1}`, proxy: String(last) };
}

export function describePlacement(placement: CpuPlacement | undefined): string {
  return placement ? `load client and servers on CPU ${placement.load}, proxies on CPU ${placement.proxy}` : 'nothing pinned (one CPU, or BENCH_PIN=off)';
}

/** Pins every thread of a running process (and the threads it starts later) to `cpus`. */
export async function pinProcess(pid: number, cpus: string | undefined): Promise<void> {
  if (cpus === undefined) return;
  await promisify(execFile)('taskset', ['-a', '-p', '-c', cpus, String(pid)]);
}

/** A command line prefixed so that it starts pinned to `cpus`. */
export function pinnedCommand(command: string, args: readonly string[], cpus: string | undefined): [string, string[]] {
  return cpus === undefined ? [command, [...args]] : ['taskset', ['-c', cpus, command, ...args]];
}
