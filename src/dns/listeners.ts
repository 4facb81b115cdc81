import dgram from 'node:dgram';
import net, { type AddressInfo } from 'node:net';
import { EgressdError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { ipAsIs } from './address.ts';
import type { Client } from './handler.ts';
import { TcpFramer, frame } from './tcp-framing.ts';

/**
 * UDP and TCP listeners on one port per bind address. Over TCP a client may
 * pipeline queries: they are answered as they complete (RFC 7766 allows
 * answers out of order), at most MAX_INFLIGHT at a time per connection.
 */

/** The answer, or undefined for none; a promise only when it has to wait (for an upstream). */
export type QueryHandler = (packet: Buffer, client: Client) => Buffer | undefined | Promise<Buffer | undefined>;

export interface DnsListeners {
  udp: AddressInfo[];
  tcp: AddressInfo[];
  close(): Promise<void>;
}

const MAX_INFLIGHT = 32;
/** With port 0, the port UDP got may be taken for TCP: try a few times. */
const PORT_TRIES = 5;

export async function listenDns(options: { port: number; bind: readonly string[]; tcpIdleTimeoutMs: number }, handle: QueryHandler, logger: Logger): Promise<DnsListeners> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await listenOnce(options, handle, logger);
    } catch (err) {
      const busy = ((err as EgressdError).cause as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE';
      if (!(options.port === 0 && busy && attempt < PORT_TRIES)) throw err;
    }
  }
}

async function listenOnce(options: { port: number; bind: readonly string[]; tcpIdleTimeoutMs: number }, handle: QueryHandler, logger: Logger): Promise<DnsListeners> {
  const sockets: dgram.Socket[] = [];
  const servers: net.Server[] = [];
  const connections = new Set<net.Socket>();
  const closeAll = async (): Promise<void> => {
    for (const c of connections) c.destroy();
    await Promise.all([
      ...sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
      ...servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
    ]);
  };
  let port = options.port;
  try {
    for (const host of options.bind) {
      const ipv6 = net.isIPv6(host);
      let socket: dgram.Socket;
      try {
        socket = await bindUdp(host, port, handle, logger);
      } catch (err) {
        const code = ((err as EgressdError).cause as NodeJS.ErrnoException | undefined)?.code;
        // A host without IPv6 still answers on IPv4; a single address must bind.
        if (ipv6 && options.bind.length > 1 && (code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL')) {
          logger.warn({ host, code }, 'IPv6 unavailable, DNS proxy on IPv4 only');
          continue;
        }
        throw err;
      }
      sockets.push(socket);
      port = socket.address().port;
      servers.push(await listenTcp(host, port, options.tcpIdleTimeoutMs, handle, connections, logger));
    }
  } catch (err) {
    await closeAll();
    throw err;
  }
  return {
    udp: sockets.map((s) => s.address()),
    tcp: servers.map((s) => s.address() as AddressInfo),
    close: closeAll,
  };
}

function listenError(transport: string, host: string, port: number, err: NodeJS.ErrnoException): EgressdError {
  return new EgressdError('EGRESSD_ERR_LISTEN', `DNS ${transport} listener cannot bind ${host}:${port}: ${err.code ?? err.message}`, { cause: err, context: { host, port } });
}

function bindUdp(host: string, port: number, handle: QueryHandler, logger: Logger): Promise<dgram.Socket> {
  const ipv6 = net.isIPv6(host);
  const socket = dgram.createSocket({ type: ipv6 ? 'udp6' : 'udp4', ipv6Only: ipv6, lookup: ipAsIs(ipv6 ? 6 : 4) });
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      socket.close();
      reject(listenError('UDP', host, port, err));
    };
    socket.once('error', onError);
    socket.bind({ address: host, port, exclusive: true }, () => {
      socket.off('error', onError);
      socket.on('error', (err) => logger.error({ err }, 'DNS UDP socket error'));
      // Without a callback Node sends at once (uv_udp_try_send), with one it goes through a request
      // object and a later callback: a third of the time of a cache hit. A lost answer is a lost datagram.
      socket.on('message', (msg, rinfo) => {
        const reply = handle(msg, { address: rinfo.address, port: rinfo.port, transport: 'udp' });
        if (reply instanceof Promise) void reply.then((later) => later !== undefined && socket.send(later, rinfo.port, rinfo.address));
        else if (reply !== undefined) socket.send(reply, rinfo.port, rinfo.address);
      });
      resolve(socket);
    });
  });
}

function listenTcp(host: string, port: number, idleMs: number, handle: QueryHandler, connections: Set<net.Socket>, logger: Logger): Promise<net.Server> {
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => serveTcp(socket, idleMs, handle, connections));
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(listenError('TCP', host, port, err));
    server.once('error', onError);
    server.listen({ host, port, ipv6Only: net.isIPv6(host), exclusive: true }, () => {
      server.off('error', onError);
      server.on('error', (err) => logger.error({ err }, 'DNS TCP listener error'));
      resolve(server);
    });
  });
}

function serveTcp(socket: net.Socket, idleMs: number, handle: QueryHandler, connections: Set<net.Socket>): void {
  connections.add(socket);
  const client: Client = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, transport: 'tcp' };
  const framer = new TcpFramer();
  let inflight = 0;
  let ended = false;
  const finishIfDone = (): void => {
    if (ended && inflight === 0) socket.end();
  };
  socket.setTimeout(idleMs, () => socket.destroy());
  socket.on('error', () => socket.destroy());
  socket.on('close', () => connections.delete(socket));
  socket.on('end', () => {
    ended = true;
    finishIfDone();
  });
  socket.on('data', (chunk: Buffer) => {
    for (const message of framer.push(chunk)) {
      inflight++;
      if (inflight >= MAX_INFLIGHT) socket.pause();
      const done = (reply: Buffer | undefined): void => {
        inflight--;
        if (reply !== undefined && !socket.destroyed && socket.writable) socket.write(frame(reply));
        if (socket.isPaused() && inflight < MAX_INFLIGHT) socket.resume();
        finishIfDone();
      };
      const reply = handle(message, client);
      if (reply instanceof Promise) void reply.then(done);
      else done(reply);
    }
  });
}
