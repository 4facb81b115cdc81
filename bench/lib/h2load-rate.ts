import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execInNetns, host } from '../../src/lab/index.ts';
import { pinnedCommand } from './cpu-pinning.ts';
import { percentile, type RoundResult } from './latency-report.ts';

/**
 * The fixed-rate load of a path from nghttp2's h2load (Debian's
 * nghttp2-client) instead of the Node load client, whose own timers and
 * garbage collector put milliseconds into every path's p99 on a small
 * machine. One h2load per keep-alive connection (`-c 1 --rps rate/conns`),
 * started one arrival interval apart, so that requests arrive evenly as
 * with the Node client rather than all connections at once; each writes
 * its requests' latencies (`--log-file`), merged here.
 * A connection's first two requests (its connect through the proxy) are
 * left out, as the Node client warms its pool before it measures.
 * With `https`, h2load speaks HTTP/1.1 over TLS (ALPN http/1.1, SNI from
 * the host; it does not verify the certificate).
 */
export async function h2loadAvailable(): Promise<boolean> {
  try {
    await host(['h2load', '--version']);
    return true;
  } catch {
    return false;
  }
}

const SKIPPED_PER_CONNECTION = 2;

export async function h2loadRate(
  target: { ns: string; uid?: number; host: string; port: number; https?: boolean },
  load: { rps: number; conns: number; seconds: number },
  cpus: string | undefined,
): Promise<RoundResult> {
  const dir = await mkdtemp(join(tmpdir(), 'egressd-bench-h2load-'));
  await chmod(dir, 0o777);
  try {
    const url = `${target.https === true ? 'https' : 'http'}://${target.host}:${target.port}/1k`;
    const runs: Array<Promise<unknown>> = [];
    for (let i = 0; i < load.conns; i++) {
      const args = ['--h1', '-c', '1', '--rps', String(load.rps / load.conns), '-D', String(load.seconds), '--log-file', join(dir, `${i}.log`), url];
      const [command, commandArgs] = pinnedCommand('h2load', args, cpus);
      runs.push(execInNetns(target.ns, command, commandArgs, { ...(target.uid === undefined ? {} : { uid: target.uid }), timeoutMs: (load.seconds + 60) * 1000 }));
      await new Promise((resolve) => setTimeout(resolve, 1000 / load.rps));
    }
    await Promise.all(runs);
    const latencies: number[] = [];
    let errors = 0;
    let first = Infinity;
    let last = 0;
    for (let i = 0; i < load.conns; i++) {
      const lines = (await readFile(join(dir, `${i}.log`), 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
      for (const line of lines.slice(SKIPPED_PER_CONNECTION)) {
        const [start, status, micros] = line.split('\t').map(Number) as [number, number, number];
        if (status === 200) latencies.push(micros / 1000);
        else errors++;
        first = Math.min(first, start);
        last = Math.max(last, start);
      }
    }
    latencies.sort((a, b) => a - b);
    const requests = latencies.length + errors;
    return {
      requests,
      errors,
      achieved_rps: last > first ? requests / ((last - first) / 1e6) : 0,
      p50_ms: percentile(latencies, 50),
      p90_ms: percentile(latencies, 90),
      p99_ms: percentile(latencies, 99),
      latencies_ms: latencies,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
