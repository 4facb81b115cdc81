import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { EgressdError } from '../core/errors.ts';
import { normalizeHost, socketDescriptor } from '../core/net.ts';
import { refuseTcp } from './refuse.ts';
import type { SpliceResult } from './splice.ts';

/**
 * The direct route's splice, off the event loop: the agent's own addon
 * (native/relay.c) copies the bytes of both sockets on a thread with its own
 * epoll, as a C proxy would, and runs the keep-alive Host guard
 * (native/http-request-guard.c) on what a plain HTTP client sends. Node's
 * event loop alone added 2-3x HAProxy's p99 latency on this path (issue 3);
 * its wake-ups, not egressd's code, were the tail.
 *
 * The JavaScript sockets hand over their descriptors and stay open, idle,
 * until the thread reports: the thread works on duplicates, so a descriptor
 * number is never reused under it, and the agent's shutdown still ends a
 * connection by destroying its client socket.
 */

export interface RelayOptions {
  /** What the sniffer read from the client, written to the destination first (through the guard when there is one). */
  replay: Buffer;
  idleTimeoutMs: number;
  /** Guards a plain HTTP/1 connection for the host its first request named. */
  guard?: GuardHost;
  /** Sees the destination's first bytes (up to 16, enough for an HTTP status line) once the connection is over. */
  onFirstResponseBytes?: (chunk: Buffer) => void;
}

/** `host` normalized as the policy compares names (null when the first request named none); `alias` the name as sent, when normalizing did more than case and a trailing dot. */
export interface GuardHost {
  host: string | null;
  alias?: string;
}

/** The guard for a connection whose first request named `name` (its Host, else its absolute-form target's host). */
export function guardFor(name: string | null): GuardHost {
  if (name === null) return { host: null };
  const host = normalizeHost(name);
  const sent = name.toLowerCase().replace(/\.$/, '');
  return sent === host ? { host } : { host, alias: sent };
}

/** What the thread reports when a connection is over; the addon's callback also names the connection first. */
type Done = (sent: number, received: number, error: string | undefined, refused: string | undefined, first: Buffer | undefined) => void;

interface RelayAddon {
  init(onDone: (id: number, ...result: Parameters<Done>) => void): void;
  start(clientFd: number, upstreamFd: number, replay: Buffer, toClient: Buffer, idleMs: number, guardHost: string | null | undefined, guardAlias: string | undefined): number;
  abort(id: number, reason: string): void;
}

/** package.json's `imports` maps this to build/Release/relay.node, for the sources and the bundles alike. */
const ADDON = '#relay-addon';

/** The relay thread keeps milliseconds in an int32: longer idle timeouts (over 24 days) mean no timeout in practice. */
const MAX_IDLE_MS = 2 ** 31 - 1;

const waiting = new Map<number, Done>();
let addon: RelayAddon | undefined;

function relayAddon(): RelayAddon {
  if (addon) return addon;
  let loaded: RelayAddon;
  try {
    loaded = createRequire(import.meta.url)(ADDON) as RelayAddon;
  } catch (err) {
    throw new EgressdError('EGRESSD_ERR_RELAY', `egressd's relay addon (${ADDON}) does not load: ${(err as Error).message}; \`npm ci\` or \`npm rebuild\` builds it (needs python3, make and a C compiler)`, {
      cause: err,
    });
  }
  loaded.init((id, ...result) => {
    const done = waiting.get(id);
    waiting.delete(id);
    done?.(...result);
  });
  addon = loaded;
  return addon;
}

/** Whether both sockets are kernel sockets still open, which the thread can take over. */
export function relayable(client: Socket, upstream: unknown): upstream is Socket {
  return socketDescriptor(client) !== undefined && socketDescriptor(upstream as Socket) !== undefined && !client.destroyed && !(upstream as Socket).destroyed;
}

export async function relay(client: Socket, upstream: Socket, options: RelayOptions): Promise<SpliceResult> {
  const native = relayAddon();
  // Whatever the agent wrote to the client (a proxy's 200 to CONNECT) goes out before the thread writes.
  await Promise.all([flushed(client), flushed(upstream)]);
  const replay = Buffer.concat([options.replay, ...takeOver(client)]);
  const toClient = Buffer.concat(takeOver(upstream));
  if (client.destroyed || upstream.destroyed) {
    refuseTcp(client);
    refuseTcp(upstream);
    return { bytesSent: 0, bytesReceived: 0, error: `${client.destroyed ? 'client' : 'upstream'}: closed before the end of the stream` };
  }
  return new Promise((resolve) => {
    let cut: string | undefined;
    const id = native.start(socketDescriptor(client)!, socketDescriptor(upstream)!, replay, toClient, Math.min(options.idleTimeoutMs, MAX_IDLE_MS), options.guard?.host, options.guard?.alias);
    const onError = (name: string) => (err: NodeJS.ErrnoException) => {
      cut ??= `${name}: ${err.code ?? err.message}`;
    };
    const onClose = (name: string) => () => native.abort(id, cut ?? `${name}: closed by the agent`);
    const listeners = [
      [client, onError('client'), onClose('client')],
      [upstream, onError('upstream'), onClose('upstream')],
    ] as const;
    for (const [socket, error, close] of listeners) {
      socket.on('error', error);
      socket.once('close', close);
    }
    // What Node read from the destination before the hand-over was received too, and the thread wrote it on.
    waiting.set(id, (sent, received, error, refused, first) => {
      for (const [socket, , close] of listeners) socket.off('close', close);
      // The thread closed its duplicates; these are the last descriptors (a reset when it set SO_LINGER 0).
      client.destroy();
      upstream.destroy();
      const firstBytes = toClient.length > 0 ? toClient : first;
      if (firstBytes && options.onFirstResponseBytes) options.onFirstResponseBytes(firstBytes);
      resolve({ bytesSent: sent, bytesReceived: received + toClient.length, ...(error === undefined ? {} : { error }), ...(refused === undefined ? {} : { refused }) });
    });
  });
}

/**
 * Stops Node reading the socket and takes what it read but nobody consumed.
 * read() may restart reading (a stream below its high-water mark asks for
 * more), so reading is stopped after it; no bytes arrive in between, since
 * they are delivered only when the event loop polls.
 */
function takeOver(socket: Socket): Buffer[] {
  const chunks: Buffer[] = [];
  for (let chunk: Buffer | null = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) chunks.push(chunk);
  const handle = (socket as unknown as { _handle?: { readStop(): number; reading: boolean } | null })._handle;
  if (handle) {
    handle.readStop();
    handle.reading = false;
  }
  return chunks;
}

function flushed(socket: Socket): Promise<void> {
  if (socket.writableLength === 0 || socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => socket.write(Buffer.alloc(0), () => resolve()));
}
