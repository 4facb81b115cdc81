/**
 * Child process for agent.test.ts: one HTTP or HTTPS request made by Node
 * the way an application in the pod makes it (the test runs it as UID 1000).
 * Like `curl --resolve`, it connects to `address` and names `host` (SNI and
 * Host header), so iptables sends it to the agent with that name on the
 * wire. Prints one JSON ClientResult line; errors are results.
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface ClientSpec {
  scheme: 'http' | 'https';
  /** The IP the application connects to. */
  address: string;
  port: number;
  /** SNI and Host header, unless `headers` has its own `host`. */
  host: string;
  /** Origin form (`/x`) or absolute form (`http://name/x`): sent as the request target as is. */
  path: string;
  headers?: Record<string, string>;
  caFile?: string;
  /** Bound on the whole exchange (default 15 s). */
  timeoutMs?: number;
}

export type ClientResult = { ok: true; status: number; headers: IncomingHttpHeaders; body: string } | { ok: false; code: string; message: string };

const spec = JSON.parse(process.argv[2] ?? '{}') as ClientSpec;

function done(result: ClientResult): never {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

setTimeout(() => done({ ok: false, code: 'ETIMEDOUT', message: `no answer within ${spec.timeoutMs ?? 15_000} ms` }), spec.timeoutMs ?? 15_000).unref();

const options = {
  host: spec.address,
  port: spec.port,
  path: spec.path,
  method: 'GET',
  headers: { host: spec.host, ...spec.headers },
  agent: false as const,
};
const req =
  spec.scheme === 'https'
    ? httpsRequest({ ...options, servername: spec.host, ...(spec.caFile === undefined ? {} : { ca: readFileSync(spec.caFile) }) })
    : httpRequest(options);
req.on('response', (res) => {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (d: string) => (body += d));
  res.on('end', () => done({ ok: true, status: res.statusCode ?? 0, headers: res.headers, body }));
  res.on('error', (err: NodeJS.ErrnoException) => done({ ok: false, code: err.code ?? 'ERROR', message: err.message }));
});
req.on('error', (err: NodeJS.ErrnoException) => done({ ok: false, code: err.code ?? 'ERROR', message: err.message }));
req.end();
