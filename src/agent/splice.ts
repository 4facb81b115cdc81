import type { Socket } from 'node:net';
import type { UpstreamSocket } from './tunnel-socket.ts';

/**
 * The last stage: replay what the sniffer buffered, then copy bytes both
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
  /** Reads every byte the client sends (the replay first) before it goes on; a reason cuts both sides instead. */
  inspect?: (chunk: Buffer) => string | undefined;
}

export interface SpliceResult {
  bytesSent: number;
  bytesReceived: number;
  error?: string;
  /** Why `inspect` cut the connection. */
  refused?: string;
}

export function splice(client: Socket, upstream: UpstreamSocket, options: SpliceOptions): Promise<SpliceResult> {
  return new Promise((resolve) => {
    let error: string | undefined;
    let refused: string | undefined;
    let open = 2;
    const closed = (): void => {
      if (--open > 0) return;
      resolve({ bytesSent: upstream.bytesWritten, bytesReceived: upstream.bytesRead, ...(error === undefined ? {} : { error }), ...(refused === undefined ? {} : { refused }) });
    };
    const failWith = (message: string): void => {
      error ??= message;
      reset(client);
      reset(upstream);
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
    const { inspect } = options;
    const refuse = (chunk: Buffer): boolean => {
      const why = inspect?.(chunk);
      if (why === undefined) return false;
      refused = why;
      failWith(why);
      return true;
    };
    if (options.replay.length > 0 && !refuse(options.replay)) upstream.write(options.replay);
    if (refused !== undefined) return;
    if (options.clientEnded) upstream.end();
    else if (!inspect) client.pipe(upstream);
    else {
      // pipe() with a look at each chunk first: a chunk that is refused is never written.
      client.on('data', (chunk: Buffer) => {
        if (!refuse(chunk) && !upstream.write(chunk)) client.pause();
      });
      upstream.on('drain', () => client.resume());
      client.once('end', () => upstream.end());
      // The sniffer left the socket paused; a 'data' listener alone does not restart a paused stream.
      client.resume();
    }
  });
}

/** An RST tells the peer the stream did not complete, where a FIN would look like success. */
function reset(socket: Socket | UpstreamSocket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}
