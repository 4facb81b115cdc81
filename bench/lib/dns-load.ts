import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HOST, pinned } from './dns-peers.ts';

/**
 * The DNS benchmark's load, all from dnsperf (a C client with microsecond
 * timing, far from being the limit), pinned to its own CPU when asked:
 *
 * - throughput: as many queries as answered with `inflight` outstanding;
 * - latencies: `rate` queries a second (dnsperf -Q), each one's time from
 *   its send to its answer (dnsperf -v), so that percentiles come from the
 *   client that sent, not from a Node timer that may itself run late.
 *
 * `hit` asks 100 names over and over (cached after the warm-up), `miss` a
 * name never asked before on every query (a fresh set per run).
 */
export type Names = 'hit' | 'miss';

export const HIT_NAMES = 100;
/** A query unanswered this long is lost (dnsperf -t). */
const TIMEOUT_S = 1;

export function dnsperfMissing(): string | undefined {
  return spawnSync('dnsperf', ['-h']).error === undefined ? undefined : 'dnsperf is not installed (Debian: apt-get install dnsperf)';
}

export interface Throughput {
  qps: number;
  completed: number;
  lost: number;
}

export interface Latencies {
  /** Milliseconds, in the order answered; a lost query counts as the timeout, a lower bound of what it took. */
  latencies: number[];
  /** Answers with an rcode other than NOERROR. */
  errors: number;
  lost: number;
}

async function withNames<T>(names: Names, count: number, run: (file: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'egressd-dns-bench-'));
  try {
    const tag = Math.random().toString(36).slice(2, 8);
    const lines = names === 'hit' ? Array.from({ length: HIT_NAMES }, (_, i) => `h${i}.bench.test A`) : Array.from({ length: count }, (_, i) => `m${i}-${tag}.bench.test A`);
    await writeFile(join(dir, 'names'), `${lines.join('\n')}\n`);
    return await run(join(dir, 'names'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function dnsperf(cpu: number | undefined, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(...pinned(cpu, 'dnsperf', ['-s', HOST, '-t', String(TIMEOUT_S), ...args]), { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(Buffer.concat(out).toString()) : reject(new Error(`dnsperf exited ${code}: ${err.trim()}`))));
  });
}

const field = (out: string, label: string): number => Number(new RegExp(`${label}:\\s+([\\d.]+)`).exec(out)?.[1] ?? NaN);

export function throughput(cpu: number | undefined, port: number, names: Names, seconds: number, inflight: number): Promise<Throughput> {
  // More fresh names than the fastest peer answers, so that a miss run never asks a name twice.
  return withNames(names, Math.ceil(seconds * 150_000), async (file) => {
    const out = await dnsperf(cpu, ['-p', String(port), '-d', file, '-l', String(seconds), '-q', String(inflight)]);
    const [sent, completed] = [field(out, 'Queries sent'), field(out, 'Queries completed')];
    return { qps: field(out, 'Queries per second'), completed, lost: sent - completed };
  });
}

export function latencies(cpu: number | undefined, port: number, names: Names, seconds: number, rate: number): Promise<Latencies> {
  return withNames(names, Math.ceil(seconds * rate * 1.2), async (file) => {
    const out = await dnsperf(cpu, ['-p', String(port), '-d', file, '-l', String(seconds), '-Q', String(rate), '-q', '1000', '-v']);
    const list: number[] = [];
    let errors = 0;
    let lost = 0;
    // `> NOERROR h7.bench.test A 0.000081`: rcode, question, seconds; `> T h7.bench.test A`: lost.
    for (const line of out.split('\n')) {
      if (!line.startsWith('> ')) continue;
      if (line.startsWith('> T ')) {
        lost++;
        list.push(TIMEOUT_S * 1000);
        continue;
      }
      if (!line.startsWith('> NOERROR ')) errors++;
      list.push(Number(line.slice(line.lastIndexOf(' ') + 1)) * 1000);
    }
    return { latencies: list, errors, lost };
  });
}
