/**
 * The benchmark's destination, run inside the "internet" namespace:
 * `/1k` answers 1 KiB, `/bulk?mib=N` streams N MiB. Prints "listening" when up.
 * With CERT and KEY (PEM files) it serves HTTPS instead of HTTP.
 *
 *   upstream-server.ts [HOST] [PORT] [CERT KEY]
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';

const [host = '0.0.0.0', portText = '8080', certFile, keyFile] = process.argv.slice(2);
const KIB = Buffer.alloc(1024, 'x');
const CHUNK = Buffer.alloc(256 * 1024, 'y');

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname === '/bulk') {
    let left = Number(url.searchParams.get('mib') ?? '1') * 4;
    res.writeHead(200, { 'content-length': left * CHUNK.length });
    const pump = (): void => {
      while (left > 0) {
        left--;
        if (!res.write(CHUNK)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
    return;
  }
  res.writeHead(200, { 'content-length': KIB.length });
  res.end(KIB);
}

const server =
  certFile && keyFile
    ? createHttpsServer({ keepAliveTimeout: 60_000, cert: readFileSync(certFile), key: readFileSync(keyFile) }, handle)
    : createServer({ keepAliveTimeout: 60_000 }, handle);
server.listen(Number(portText), host, () => process.stdout.write('listening\n'));
