import http2, { type ClientHttp2Session } from 'node:http2';
import { isIP } from 'node:net';
import tls, { type PeerCertificate } from 'node:tls';
import { EgressdError, errorMessage } from '../core/errors.ts';
import { formatHostPort, parseHostPort } from '../core/net.ts';
import { backoffDelay, type BackoffOptions } from './backoff.ts';

/**
 * One gateway replica as the agent sees it: at most one long-lived HTTP/2
 * session over mutual TLS, opened lazily, shared by every tunnel, and left
 * alone for a backoff after it fails.
 */

export type ReplicaState = 'idle' | 'connecting' | 'up' | 'down';

export interface ReplicaSettings {
  secureContext: () => tls.SecureContext;
  servername?: string;
  checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined;
  connectTimeoutMs: number;
  pingIntervalMs: number;
  backoff: BackoffOptions;
  now: () => number;
  onUp: (replica: Replica) => void;
  onDown: (replica: Replica, error: Error, retryInMs: number) => void;
}

/** HTTP/2 stream ids are 31-bit and never reused: a session this far along is replaced before it runs out. */
const STREAM_ID_LIMIT = 2 ** 31 - 2 ** 16;

export class Replica {
  readonly address: string;
  readonly #host: string;
  readonly #port: number;
  readonly #settings: ReplicaSettings;
  #session: ClientHttp2Session | undefined;
  #connecting: Promise<ClientHttp2Session> | undefined;
  #state: ReplicaState = 'idle';
  #failures = 0;
  #retryAt = 0;
  #lastError: string | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #active = 0;

  constructor(address: string, settings: ReplicaSettings) {
    const { host, port } = parseHostPort(address);
    this.address = address;
    this.#host = host;
    this.#port = port;
    this.#settings = settings;
  }

  get state(): ReplicaState {
    return this.#state;
  }

  get failures(): number {
    return this.#failures;
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  retryInMs(): number {
    return this.#state === 'down' ? Math.max(0, this.#retryAt - this.#settings.now()) : 0;
  }

  /** May a new tunnel be tried here: connected, never tried, or its backoff is over. */
  available(): boolean {
    return this.#state !== 'down' || this.#settings.now() >= this.#retryAt;
  }

  /** Tunnels open through this replica right now. */
  get activeStreams(): number {
    return this.#active;
  }

  /** Counts a tunnel until its stream closes. */
  track(stream: { once(event: 'close', listener: () => void): unknown }): void {
    this.#active++;
    stream.once('close', () => {
      this.#active--;
    });
  }

  /** The live session, connecting first if there is none. Rejects with the connection's error. */
  session(): Promise<ClientHttp2Session> {
    const current = this.#session;
    if (current && !current.closed && !current.destroyed && (current.state.nextStreamID ?? 0) < STREAM_ID_LIMIT) {
      return Promise.resolve(current);
    }
    if (current) this.retire();
    this.#connecting ??= this.#connect().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  /** Takes the replica out of rotation after a failure that is its fault (connection, session, handshake). */
  fail(error: Error): void {
    const session = this.#session;
    this.#session = undefined;
    this.#stopPing();
    if (session && !session.destroyed) session.destroy();
    if (this.#state === 'down' && this.#settings.now() < this.#retryAt) return;
    this.#failures++;
    this.#lastError = errorMessage(error);
    const delay = backoffDelay(this.#failures, this.#settings.backoff);
    this.#retryAt = this.#settings.now() + delay;
    this.#state = 'down';
    this.#settings.onDown(this, error, delay);
  }

  /** Lets the current session finish its streams and stops using it: the next tunnel connects anew (new credentials). */
  retire(): void {
    const session = this.#session;
    this.#session = undefined;
    this.#stopPing();
    if (session && !session.closed && !session.destroyed) session.close();
    if (this.#state === 'up') this.#state = 'idle';
  }

  /** Closes the session: gracefully within `graceMs`, then by force. */
  async close(graceMs: number): Promise<void> {
    const session = this.#session;
    this.#session = undefined;
    this.#stopPing();
    if (!session || session.destroyed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => session.destroy(), graceMs);
      session.close(() => {
        clearTimeout(timer);
        resolve();
      });
      session.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #connect(): Promise<ClientHttp2Session> {
    const s = this.#settings;
    this.#state = this.#state === 'down' ? 'down' : 'connecting';
    return new Promise<ClientHttp2Session>((resolve, reject) => {
      let settled = false;
      const servername = s.servername ?? (isIP(this.#host) ? undefined : this.#host);
      const session = http2.connect(`https://${formatHostPort(this.#host, this.#port)}`, {
        createConnection: () =>
          tls.connect({
            host: this.#host,
            port: this.#port,
            secureContext: s.secureContext(),
            ...(servername === undefined ? {} : { servername }),
            ALPNProtocols: ['h2'],
            checkServerIdentity: s.checkServerIdentity,
          }),
        settings: { enablePush: false, initialWindowSize: 1 << 20 },
      });
      const timer = setTimeout(() => {
        session.destroy(new EgressdError('EGRESSD_ERR_UPSTREAM', `gateway ${this.address}: connect timed out after ${s.connectTimeoutMs} ms`));
      }, s.connectTimeoutMs);
      const failed = (err: Error): void => {
        clearTimeout(timer);
        if (!settled) {
          settled = true;
          this.fail(err);
          reject(new EgressdError('EGRESSD_ERR_UPSTREAM', `gateway ${this.address}: ${errorMessage(err)}`, { cause: err }));
        } else if (this.#session === session) {
          this.fail(err);
        }
      };
      session.on('error', failed);
      session.once('close', () => {
        clearTimeout(timer);
        if (!settled) failed(new Error('connection closed during the handshake'));
        else if (this.#session === session) {
          // Closed without an error: the gateway went away gracefully or dropped an idle session.
          this.#session = undefined;
          this.#stopPing();
          if (this.#state === 'up') this.#state = 'idle';
        }
      });
      session.once('goaway', () => {
        if (this.#session === session) this.retire();
      });
      session.once('connect', () => {
        clearTimeout(timer);
        settled = true;
        session.setLocalWindowSize(8 << 20);
        this.#session = session;
        this.#state = 'up';
        this.#failures = 0;
        this.#lastError = undefined;
        this.#startPing(session);
        s.onUp(this);
        resolve(session);
      });
    });
  }

  /** A peer that stopped answering (half-open TCP, partition) is found by an unanswered ping, not left to hang tunnels. */
  #startPing(session: ClientHttp2Session): void {
    const interval = this.#settings.pingIntervalMs;
    if (interval <= 0) return;
    let outstanding = false;
    this.#pingTimer = setInterval(() => {
      if (outstanding) {
        if (this.#session === session) this.fail(new Error(`no answer to a ping within ${interval} ms`));
        return;
      }
      outstanding = true;
      session.ping((err) => {
        outstanding = false;
        if (err && this.#session === session) this.fail(err);
      });
    }, interval);
    this.#pingTimer.unref();
  }

  #stopPing(): void {
    if (this.#pingTimer) clearInterval(this.#pingTimer);
    this.#pingTimer = undefined;
  }
}
