/**
 * Load generator, run as a child process inside the pod namespace (as the UID
 * whose path is measured). Two modes, one JSON line on stdout:
 *   rate HOST PORT RPS SECONDS CONNS   GETs of /1k at a fixed arrival rate over CONNS keep-alive connections;
 *                                      latency is measured from the scheduled send time (no coordinated omission)
 *   bulk HOST PORT MIB                 one connection reads MIB mebibytes from /bulk
 */
import { Agent, request } from 'node:http';

const [mode, host, portText, a, b, c] = process.argv.slice(2);
const port = Number(portText);

function get(agent: Agent, path: string, onData?: (n: number) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, agent, headers: { host: `${host}:${port}` } }, (res) => {
      res.on('data', (chunk: Buffer) => onData?.(chunk.length));
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function rate(rps: number, seconds: number, conns: number): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: conns });
  for (let i = 0; i < conns * 2; i++) await get(agent, '/1k'); // warm the pool
  const total = Math.round(rps * seconds);
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rps;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(
      get(agent, '/1k').then(
        (status) => {
          if (status === 200) latencies.push(performance.now() - due);
          else errors++;
        },
        () => void errors++,
      ),
    );
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((x, y) => x - y);
  agent.destroy();
  process.stdout.write(
    JSON.stringify({ requests: total, errors, achieved_rps: total / elapsed, p50_ms: percentile(latencies, 50), p90_ms: percentile(latencies, 90), p99_ms: percentile(latencies, 99) }) + '\n',
  );
}

async function bulk(mib: number): Promise<void> {
  const agent = new Agent({ keepAlive: false });
  let bytes = 0;
  const start = performance.now();
  await get(agent, `/bulk?mib=${mib}`, (n) => (bytes += n));
  const seconds = (performance.now() - start) / 1000;
  process.stdout.write(JSON.stringify({ bytes, seconds, mib_per_s: bytes / 1048576 / seconds }) + '\n');
}

if (mode === 'rate') await rate(Number(a), Number(b), Number(c));
else if (mode === 'bulk') await bulk(Number(a));
else throw new Error(`unknown mode ${mode}`);
