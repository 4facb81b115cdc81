/**
 * The benchmark's destination, run inside the "internet" namespace:
 * `/1k` answers 1 KiB, `/bulk?mib=N` streams N MiB. Prints "listening" when up.
 */
import { createServer } from 'node:http';

const [host = '0.0.0.0', portText = '8080'] = process.argv.slice(2);
const KIB = Buffer.alloc(1024, 'x');
const CHUNK = Buffer.alloc(256 * 1024, 'y');

const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
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
});
server.listen(Number(portText), host, () => process.stdout.write('listening\n'));
