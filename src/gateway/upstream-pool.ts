import type { Socket } from 'node:net';

/**
 * Idle keep-alive connections to destinations, shared by the HTTP tunnels:
 * a tunnel takes one for its first request and gives it back when it ends
 * between two responses, so that an application opening a connection per
 * request does not cost a TCP and TLS handshake to the destination each time.
 * The key names the destination and everything that shaped the connection
 * (rule's TLS settings included). A reset (new rules) drops every idle
 * connection and refuses the ones given back from before it.
 */

export interface UpstreamPoolOptions {
  /** Idle connections kept per key. */
  maxIdlePerKey: number;
  /** Keys kept; the least recently used is dropped. */
  maxKeys: number;
  idleTimeoutMs: number;
}

interface Idle {
  socket: Socket;
  /** Takes the pool's listeners off the socket. */
  detach: () => void;
}

export class UpstreamPool {
  readonly #options: UpstreamPoolOptions;
  readonly #idle = new Map<string, Idle[]>();
  #generation = 0;

  constructor(options: UpstreamPoolOptions) {
    this.#options = options;
  }

  /** Stamps a connection taken or dialled now, for give(). */
  get generation(): number {
    return this.#generation;
  }

  take(key: string): Socket | undefined {
    const list = this.#idle.get(key);
    if (!list) return undefined;
    let idle: Idle | undefined;
    while ((idle = list.pop()) !== undefined) {
      idle.detach();
      if (usable(idle.socket)) break;
      idle.socket.destroy();
    }
    this.#idle.delete(key);
    if (list.length > 0) this.#idle.set(key, list);
    return idle?.socket;
  }

  /** A connection between two exchanges, from `generation`; anything unusable or from before a reset is closed instead. */
  give(key: string, socket: Socket, generation: number): void {
    const list = this.#idle.get(key) ?? [];
    if (generation !== this.#generation || !usable(socket) || list.length >= this.#options.maxIdlePerKey) {
      socket.destroy();
      return;
    }
    const drop = (): void => {
      const at = list.indexOf(idle);
      if (at >= 0) list.splice(at, 1);
      detach();
      socket.destroy();
    };
    // Bytes from a server nobody asked are a broken connection; a close or timeout ends it.
    const events = ['data', 'end', 'close', 'error', 'timeout'] as const;
    for (const event of events) socket.on(event, drop);
    socket.setTimeout(this.#options.idleTimeoutMs);
    const detach = (): void => {
      for (const event of events) socket.off(event, drop);
      socket.setTimeout(0);
    };
    const idle = { socket, detach };
    list.push(idle);
    this.#idle.delete(key);
    this.#idle.set(key, list);
    if (this.#idle.size > this.#options.maxKeys) {
      const [oldest, dropped] = this.#idle.entries().next().value as [string, Idle[]];
      this.#idle.delete(oldest);
      for (const d of dropped) {
        d.detach();
        d.socket.destroy();
      }
    }
  }

  /** New connections from now on; idle ones close, busy ones are not taken back. */
  reset(): void {
    this.#generation++;
    for (const list of this.#idle.values()) {
      for (const idle of list) {
        idle.detach();
        idle.socket.destroy();
      }
    }
    this.#idle.clear();
  }
}

function usable(socket: Socket): boolean {
  return !socket.destroyed && socket.writable && socket.readable;
}
