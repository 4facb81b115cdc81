import type { Socket } from 'node:net';

/**
 * The connections in flight, so that shutdown can wait for them to finish
 * (drain) and, once the grace period is over, cut the rest. A connection
 * counts until its audit record is written, not merely until its socket
 * closes: shutdown must not flush the audit log before the last record.
 */
export class ConnectionTracker {
  private readonly open = new Map<Socket, Promise<void>>();
  private waiters: (() => void)[] = [];

  get size(): number {
    return this.open.size;
  }

  /** Tracks `socket` until `done` settles. */
  track(socket: Socket, done: Promise<void>): void {
    const settled = done.then(
      () => undefined,
      () => undefined,
    );
    this.open.set(socket, settled);
    void settled.then(() => {
      this.open.delete(socket);
      if (this.open.size === 0) for (const wake of this.waiters.splice(0)) wake();
    });
  }

  /** Resolves when no connection is left. */
  idle(): Promise<void> {
    if (this.open.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Ends every connection now; each one's error handling writes its record. */
  destroyAll(reason: string): void {
    for (const socket of this.open.keys()) socket.destroy(new Error(reason));
  }
}
