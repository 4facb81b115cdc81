import http from 'node:http';
import { constants as h2, type ServerHttp2Stream } from 'node:http2';
import { Duplex } from 'node:stream';

/**
 * A tunnel stream as a plain Duplex, for node:http to parse from. Handed an
 * Http2Stream itself, node:http (seen on Node 20.20) reads it through the
 * stream's native handle, and the responses it writes back arrive with their
 * first bytes overwritten; through this wrapper it sees an ordinary stream
 * of Buffers.
 */
export class StreamDuplex extends Duplex {
  readonly #inner: ServerHttp2Stream;

  constructor(inner: ServerHttp2Stream) {
    super({ allowHalfOpen: true, decodeStrings: true });
    this.#inner = inner;
    inner.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) inner.pause();
    });
    inner.once('end', () => this.push(null));
    inner.on('error', (err) => this.destroy(err));
    inner.once('close', () => {
      if (!this.destroyed) this.destroy();
    });
    inner.on('timeout', () => this.emit('timeout'));
  }

  override _read(): void {
    this.#inner.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.#inner.write(chunk, callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.#inner.end(callback);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (!this.#inner.destroyed) this.#inner.close(err ? h2.NGHTTP2_CANCEL : h2.NGHTTP2_NO_ERROR);
    callback(err);
  }

  /** node:http arms keep-alive and request timeouts through this. */
  setTimeout(ms: number, callback?: () => void): this {
    this.#inner.setTimeout(ms);
    if (callback) this.once('timeout', callback);
    return this;
  }
}

/**
 * node:http as the parser of tunnel streams. An application may half-close
 * after its last request (END_STREAM) and still wait for the answers:
 * node:http's `httpAllowHalfOpen` (a Server property since Node 0.x, absent
 * from the type definitions) keeps the responses coming instead of aborting them.
 */
export function createTunnelHttpServer(options: http.ServerOptions, handler: http.RequestListener): http.Server {
  const server = http.createServer(options, handler);
  (server as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  return server;
}

/** Hands a tunnel stream to a server made by createTunnelHttpServer; returns what its requests see as `req.socket`. */
export function serveTunnelHttp(server: http.Server, stream: ServerHttp2Stream): StreamDuplex {
  const socket = new StreamDuplex(stream);
  server.emit('connection', socket);
  return socket;
}
