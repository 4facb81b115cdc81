/**
 * Echo servers as a child process, for a network namespace: argv[2] is JSON
 * `{ servers: [{ kind: 'http' | 'https', host, port }], certFile?, keyFile? }`.
 * Prints `{"event":"ready"}` once all listen, then `{"event":"request", ...}`
 * with what each request carried (headers included).
 */
import { readFileSync } from 'node:fs';
import { startEcho } from './_echo.ts';

interface Spec {
  servers: { kind: 'http' | 'https'; host: string; port: number }[];
  certFile?: string;
  keyFile?: string;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as Spec;
const leaf = spec.certFile && spec.keyFile ? { certPem: readFileSync(spec.certFile, 'utf8'), keyPem: readFileSync(spec.keyFile, 'utf8') } : undefined;
for (const server of spec.servers) {
  await startEcho({
    ...(server.kind === 'https' ? { leaf: leaf! } : {}),
    host: server.host,
    port: server.port,
    onRequest: (seen) => process.stdout.write(`${JSON.stringify({ event: 'request', kind: server.kind, port: server.port, ...seen })}\n`),
  });
}
process.stdout.write(`${JSON.stringify({ event: 'ready' })}\n`);
