import { constants as h2 } from 'node:http2';
import { Duplex } from 'node:stream';
import { SPLICE_BUFFER_BYTES } from './splice.ts';

/**
 * A gateway tunnel (the pool's HTTP/2 CONNECT stream) as what the splice
 * stage and node:http expect of an upstream socket: a plain Duplex of
 * Buffers that counts its bytes, half-closes with end() (END_STREAM), resets
 * with resetAndDestroy() (RST_STREAM CANCEL, which the gateway turns into a
 * TCP reset of the destination), and has an idle timeout. A reset from the
 * gateway (the destination reset, the replica died) destroys it with an
 * error, so the client is reset too, as a TCP connection would be.
 */

/** The upstream the splice stage copies to: a net.Socket, or a tunnel adapted by TunnelSocket. */
export interface UpstreamSocket extends Duplex {
  readonly bytesWritten: number;
  readonly bytesRead: number;
  resetAndDestroy(): this;
  setTimeout(ms: number, callback?: () => void): this;
}

/** What the adapter needs of the pool's stream (an http2 ClientHttp2Stream). */
interface TunnelStream extends Duplex {
  readonly rstCode?: number;
  close(code?: number): void;
  setTimeout(ms: number, callback?: () => void): void;
}

export class TunnelSocket extends Duplex implements UpstreamSocket {
  readonly #inner: TunnelStream;
  #read = 0;
  #written = 0;
  #ended = false;

  constructor(inner: Duplex) {
    super({ allowHalfOpen: true, highWaterMark: SPLICE_BUFFER_BYTES });
    this.#inner = inner as TunnelStream;
    const stream = this.#inner;
    stream.on('data', (chunk: Buffer) => {
      this.#read += chunk.length;
      if (!this.push(chunk)) stream.pause();
    });
    stream.once('end', () => {
      this.#ended = true;
      this.push(null);
    });
    stream.on('error', (err) => this.destroy(err));
    stream.once('close', () => {
      const code = stream.rstCode;
      // A clean close (both END_STREAMs) lets the Duplex end itself once both sides are done.
      if (code !== undefined && code !== h2.NGHTTP2_NO_ERROR) this.destroy(new Error(`tunnel reset by the gateway (HTTP/2 code ${code})`));
      else if (!this.#ended) this.destroy(new Error('tunnel closed before the end of the stream'));
    });
    stream.on('timeout', () => this.emit('timeout'));
  }

  get bytesRead(): number {
    return this.#read;
  }

  get bytesWritten(): number {
    return this.#written;
  }

  override _read(): void {
    this.#inner.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.#written += chunk.length;
    this.#inner.write(chunk, callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.#inner.end(callback);
  }

  /** Destroyed before the tunnel closed by itself is an abort: the gateway must reset the destination, not end it. */
  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (!this.#inner.destroyed) this.#inner.close(h2.NGHTTP2_CANCEL);
    callback(err);
  }

  resetAndDestroy(): this {
    return this.destroy();
  }

  setTimeout(ms: number, callback?: () => void): this {
    this.#inner.setTimeout(ms);
    if (callback) this.once('timeout', callback);
    return this;
  }
}
