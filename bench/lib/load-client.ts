/**
 * Load generator, run as a child process inside a namespace (as the UID
 * whose path is measured). Two modes, one JSON line on stdout:
 *   rate HOST PORT RPS SECONDS CONNS   GETs of /1k at a fixed arrival rate over CONNS keep-alive connections;
 *                                      latency is measured from the scheduled send time (no coordinated omission)
 *   bulk HOST PORT MIB                 one connection reads MIB mebibytes from /bulk
 * HOST may be a name (resolved once per connection, /etc/hosts included).
 * Options: --https with --ca FILE (PEM roots the server must chain to; else
 * the system's) and --servername NAME (SNI and the name checked; default HOST);
 * --latencies adds every latency (ms, sorted) to rate's line, for a caller that merges runs.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { parseArgs } from 'node:util';
import { percentile } from './latency-report.ts';

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: { https: { type: 'boolean', default: false }, ca: { type: 'string' }, servername: { type: 'string' }, latencies: { type: 'boolean', default: false } },
});
const [mode, host, portText, a, b, c] = positionals;
const port = Number(portText);
const tlsOptions = flags.https ? { ...(flags.ca ? { ca: readFileSync(flags.ca, 'utf8') } : {}), servername: flags.servername ?? host } : undefined;

function newAgent(keepAlive: boolean, maxSockets = Infinity): Agent {
  return tlsOptions ? new HttpsAgent({ keepAlive, maxSockets, ...tlsOptions }) : new Agent({ keepAlive, maxSockets });
}

function get(agent: Agent, path: string, onData?: (n: number) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const send = tlsOptions ? httpsRequest : request;
    // Host header left to Node: "host" on the protocol's default port, "host:port" otherwise.
    const req = send({ host, port, path, agent }, (res) => {
      res.on('data', (chunk: Buffer) => onData?.(chunk.length));
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function rate(rps: number, seconds: number, conns: number): Promise<void> {
  const agent = newAgent(true, conns);
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
    JSON.stringify({
      requests: total,
      errors,
      achieved_rps: total / elapsed,
      p50_ms: percentile(latencies, 50),
      p90_ms: percentile(latencies, 90),
      p99_ms: percentile(latencies, 99),
      ...(flags.latencies ? { latencies_ms: latencies } : {}),
    }) + '\n',
  );
}

async function bulk(mib: number): Promise<void> {
  const agent = newAgent(false);
  let bytes = 0;
  const start = performance.now();
  await get(agent, `/bulk?mib=${mib}`, (n) => (bytes += n));
  const seconds = (performance.now() - start) / 1000;
  process.stdout.write(JSON.stringify({ bytes, seconds, mib_per_s: bytes / 1048576 / seconds }) + '\n');
}

if (mode === 'rate') await rate(Number(a), Number(b), Number(c));
else if (mode === 'bulk') await bulk(Number(a));
else throw new Error(`unknown mode ${mode}`);
