import { normalizeHost } from '../core/net.ts';
import { MAX_HTTP_HEAD, parseHttpRequestHead, type RequestBody } from './http-request-head.ts';

/**
 * Reads every request of a plain HTTP/1 connection as it goes upstream, so
 * that a keep-alive connection allowed for one host cannot carry a request
 * for another: the sniffer saw only the first request, and a server behind a
 * shared address (a CDN, a virtual host) would answer the second by its Host.
 * Each request's head must name the host the first one named (Host header and
 * absolute-form target alike); bodies are skipped by their framing
 * (Content-Length or chunked). After a CONNECT or an Upgrade request the
 * connection is another protocol and is no longer read.
 * feed() returns why the stream must be cut, or undefined to let the bytes through.
 */
export class HttpRequestGuard {
  readonly #host: string | null;
  #requests = 0;
  #state: 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-data-end' | 'trailers' | 'opaque' = 'head';
  /** Bytes of the current head or line not yet complete. */
  #pending: Buffer = Buffer.alloc(0);
  /** Body bytes still to skip in the `length` and `chunk-data` states. */
  #remaining = 0;

  /** `host`: what the first request named (its Host, else its absolute-form target's host), null when it named none. */
  constructor(host: string | null) {
    this.#host = host === null ? null : normalizeHost(host);
  }

  feed(chunk: Buffer): string | undefined {
    let data = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    this.#pending = Buffer.alloc(0);
    while (data.length > 0) {
      switch (this.#state) {
        case 'opaque':
          return undefined;
        case 'head': {
          const head = parseHttpRequestHead(data);
          if (head.status === 'incomplete') return this.#keep(data, MAX_HTTP_HEAD);
          if (head.status !== 'complete') return `request ${this.#requests + 1} is not a valid HTTP/1 request head${head.status === 'malformed' ? ` (${head.reason})` : ''}`;
          this.#requests++;
          const problem = this.#names(head.host, head.targetHost);
          if (problem !== undefined) return `request ${this.#requests} ${problem}`;
          this.#startBody(head.body);
          data = data.subarray(head.length);
          break;
        }
        case 'length':
        case 'chunk-data': {
          const skipped = Math.min(this.#remaining, data.length);
          this.#remaining -= skipped;
          data = data.subarray(skipped);
          if (this.#remaining === 0) this.#state = this.#state === 'length' ? 'head' : 'chunk-data-end';
          break;
        }
        case 'chunk-size':
        case 'chunk-data-end':
        case 'trailers': {
          const end = data.indexOf('\r\n');
          if (end < 0) return this.#keep(data, 4096);
          const line = data.subarray(0, end).toString('latin1');
          data = data.subarray(end + 2);
          const problem = this.#line(line);
          if (problem !== undefined) return `request ${this.#requests}: ${problem}`;
          break;
        }
      }
    }
    return undefined;
  }

  /**
   * Every name a request gives must be the connection's host; a request that
   * names none is let through only on a connection whose first request named
   * none either (HTTP/1.0), since a server answers it with its default host.
   */
  #names(host: string | null, targetHost: string | null): string | undefined {
    const names = [host, targetHost].filter((n): n is string => n !== null);
    if (names.length === 0) return this.#host === null ? undefined : `names no host, where the connection was allowed for "${this.#host}"`;
    const other = names.find((n) => normalizeHost(n) !== this.#host);
    if (other === undefined) return undefined;
    return `names host "${other}", not ${this.#host === null ? 'none like the first request' : `"${this.#host}" that the connection was allowed for`}`;
  }

  #startBody(body: RequestBody): void {
    if (body.kind === 'opaque') this.#state = 'opaque';
    else if (body.kind === 'chunked') this.#state = 'chunk-size';
    else if (body.kind === 'length') {
      this.#state = 'length';
      this.#remaining = body.bytes;
    }
  }

  /** One CRLF-terminated line of chunked framing (RFC 9112 7.1). */
  #line(line: string): string | undefined {
    if (this.#state === 'chunk-data-end') {
      if (line !== '') return 'chunk data not followed by CRLF';
      this.#state = 'chunk-size';
      return undefined;
    }
    if (this.#state === 'trailers') {
      if (line === '') this.#state = 'head';
      return undefined;
    }
    const size = /^([0-9A-Fa-f]{1,12})(?:[ \t]*;.*)?$/.exec(line);
    if (!size) return `invalid chunk size line "${line.slice(0, 40)}"`;
    this.#remaining = parseInt(size[1]!, 16);
    this.#state = this.#remaining === 0 ? 'trailers' : 'chunk-data';
    return undefined;
  }

  /** Keeps an incomplete head or line for the next chunk, up to `limit` bytes. */
  #keep(data: Buffer, limit: number): string | undefined {
    if (data.length >= limit) return `request ${this.#requests + 1}: a head or framing line longer than ${limit} bytes`;
    this.#pending = Buffer.from(data);
    return undefined;
  }
}
