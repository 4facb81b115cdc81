import type { Socket } from 'node:net';
import { refuseTcp } from './refuse.ts';
import type { UpstreamSocket } from './tunnel-socket.ts';

/**
 * The last stage of the gateway route (the direct route's is native-relay.ts,
 * off the event loop): replay what the sniffer buffered, then copy bytes both
 * ways with backpressure (pipe), carrying half-closes across (both sockets
 * allow half-open), resetting the other side when one side fails, and
 * giving up after `idleTimeoutMs` without traffic. Resolves when both sockets
 * are closed, with the bytes exchanged with the destination.
 */

/**
 * Stream buffer of both sockets of a spliced connection. Above Node's default
 * (16 KiB) and above its 64 KiB reads: with the default, every 64 KiB chunk
 * read made write() answer "full" even when the kernel took it at once, and
 * pipe() paused and resumed the other socket once per chunk. Bounds what one
 * connection holds when a peer is slow: this, per direction.
 */
export const SPLICE_BUFFER_BYTES = 128 * 1024;

export interface SpliceOptions {
  replay: Buffer;
  /** The client already half-closed during sniffing. */
  clientEnded: boolean;
  idleTimeoutMs: number;
  /** Sees the first bytes from the destination (to read an HTTP status line). */
  onFirstResponseBytes?: (chunk: Buffer) => void;
}

export interface SpliceResult {
  bytesSent: number;
  bytesReceived: number;
  error?: string;
  /** Why the direct route's guard cut the connection (native-relay.ts). */
  refused?: string;
}

export function splice(client: Socket, upstream: UpstreamSocket, options: SpliceOptions): Promise<SpliceResult> {
  return new Promise((resolve) => {
    let error: string | undefined;
    let open = 2;
    const closed = (): void => {
      if (--open > 0) return;
      resolve({ bytesSent: upstream.bytesWritten, bytesReceived: upstream.bytesRead, ...(error === undefined ? {} : { error }) });
    };
    const failWith = (message: string): void => {
      error ??= message;
      refuseTcp(client);
      refuseTcp(upstream);
    };
    for (const [socket, name] of [[client, 'client'], [upstream, 'upstream']] as const) {
      // A side that closes without having finished both directions aborted: the other must not wait for it.
      const onClose = (): void => {
        if (!(socket.readableEnded && socket.writableFinished)) failWith(`${name}: closed before the end of the stream`);
        closed();
      };
      if (socket.closed) onClose();
      else socket.once('close', onClose);
    }
    client.on('error', (err: NodeJS.ErrnoException) => failWith(`client: ${err.code ?? err.message}`));
    upstream.on('error', (err: NodeJS.ErrnoException) => failWith(`upstream: ${err.code ?? err.message}`));
    for (const socket of [client, upstream]) {
      socket.setTimeout(options.idleTimeoutMs, () => failWith(`idle for ${options.idleTimeoutMs} ms`));
    }
    if (options.onFirstResponseBytes) upstream.once('data', options.onFirstResponseBytes);
    upstream.pipe(client);
    if (options.replay.length > 0) upstream.write(options.replay);
    if (options.clientEnded) upstream.end();
    else client.pipe(upstream);
  });
}
