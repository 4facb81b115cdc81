/**
 * Child process started by servers.ts inside a namespace: the servers named
 * in argv[2] (JSON ServersConfig). Every event goes to stdout as one JSON
 * line, `{"event":"ready"}` once all listen. Each answer describes what the
 * server saw, so a test can tell which server a client really reached.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import type { TLSSocket } from 'node:tls';
import { getOriginalDst } from '../../../src/core/original-dst.ts';
import type { ServersConfig, ServerSpec } from './servers.ts';

const config = JSON.parse(process.argv[2] ?? '{}') as ServersConfig;

function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function originalDst(socket: Socket): Record<string, unknown> {
  try {
    return { originalDst: getOriginalDst(socket) };
  } catch (err) {
    return { originalDst: null, originalDstError: (err as Error).message };
  }
}

function answerHttp(spec: ServerSpec) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const body = {
      server: config.name,
      kind: spec.kind,
      method: req.method,
      url: req.url,
      host: req.headers.host,
      sni: spec.kind === 'https' ? ((req.socket as TLSSocket).servername ?? null) : null,
      remoteAddress: req.socket.remoteAddress,
      localAddress: req.socket.localAddress,
      localPort: req.socket.localPort,
    };
    emit({ event: 'request', ...body });
    res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
  };
}

function listen(spec: ServerSpec): Promise<void> {
  return new Promise((resolve, reject) => {
    const listening = (): void => {
      emit({ event: 'listening', kind: spec.kind, host: spec.host, port: spec.port });
      resolve();
    };
    if (spec.kind === 'udp') {
      const socket = createSocket({ type: spec.host.includes(':') ? 'udp6' : 'udp4' });
      socket.on('message', (msg, rinfo) => {
        const body = { server: config.name, kind: 'udp', localPort: spec.port, from: `${rinfo.address}:${rinfo.port}`, payload: msg.toString('utf8') };
        emit({ event: 'datagram', ...body });
        socket.send(`${JSON.stringify(body)}\n`, rinfo.port, rinfo.address);
      });
      socket.once('error', reject);
      socket.bind(spec.port, spec.host, listening);
      return;
    }
    const server =
      spec.kind === 'tcp'
        ? createTcpServer((socket) => {
            const body = {
              server: config.name,
              kind: 'tcp',
              localAddress: socket.localAddress,
              localPort: socket.localPort,
              remoteAddress: socket.remoteAddress,
              ...originalDst(socket),
            };
            emit({ event: 'connection', ...body });
            socket.on('error', () => {});
            socket.end(`${JSON.stringify(body)}\n`);
          })
        : spec.kind === 'https'
          ? createHttpsServer({ cert: readFileSync(config.certFile ?? ''), key: readFileSync(config.keyFile ?? '') }, answerHttp(spec))
          : createHttpServer(answerHttp(spec));
    server.once('error', reject);
    server.listen(spec.port, spec.host, listening);
  });
}

try {
  for (const spec of config.servers ?? []) await listen(spec);
  emit({ event: 'ready' });
} catch (err) {
  process.stderr.write(`servers: ${(err as Error).message}\n`);
  process.exit(1);
}
process.on('SIGTERM', () => process.exit(0));
