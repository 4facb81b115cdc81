import { BodyReader } from '../core/http1-body.ts';
import { MAX_HTTP_HEAD, parseHttpRequestHead } from '../core/http1-request-head.ts';
import { RequestHostCheck } from '../core/http1-request-host.ts';

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
const NOTHING = Buffer.alloc(0);

export class HttpRequestGuard {
  readonly #hosts: RequestHostCheck;
  #requests = 0;
  #state: 'head' | 'body' | 'opaque' = 'head';
  /** Bytes of the current head not yet complete. */
  #pending: Buffer = NOTHING;
  #body: BodyReader | undefined;

  /** `host`: what the first request named (its Host, else its absolute-form target's host), null when it named none. */
  constructor(host: string | null) {
    this.#hosts = new RequestHostCheck(host);
  }

  feed(chunk: Buffer): string | undefined {
    let data = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    this.#pending = NOTHING;
    while (data.length > 0) {
      if (this.#state === 'opaque') return undefined;
      if (this.#state === 'body') {
        const step = this.#body!.read(data);
        if ('error' in step) return `request ${this.#requests}: ${step.error}`;
        data = step.used === data.length ? NOTHING : data.subarray(step.used);
        if (step.done) this.#state = 'head';
        continue;
      }
      const head = parseHttpRequestHead(data);
      if (head.status === 'incomplete') {
        if (data.length >= MAX_HTTP_HEAD) return `request ${this.#requests + 1}: a head longer than ${MAX_HTTP_HEAD} bytes`;
        this.#pending = Buffer.from(data);
        return undefined;
      }
      if (head.status !== 'complete') return `request ${this.#requests + 1} is not a valid HTTP/1 request head${head.status === 'malformed' ? ` (${head.reason})` : ''}`;
      this.#requests++;
      const problem = this.#names(head.host, head.targetHost);
      if (problem !== undefined) return `request ${this.#requests} ${problem}`;
      data = head.length === data.length ? NOTHING : data.subarray(head.length);
      if (head.upgrade) {
        this.#state = 'opaque';
      } else {
        this.#body = new BodyReader(head.body);
        this.#state = this.#body.done ? 'head' : 'body';
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
    const allowed = this.#hosts.host;
    if (host === null && targetHost === null) return allowed === null ? undefined : `names no host, where the connection was allowed for "${allowed}"`;
    const other = this.#hosts.other(host, targetHost);
    if (other === undefined) return undefined;
    return `names host "${other}", not ${allowed === null ? 'none like the first request' : `"${allowed}" that the connection was allowed for`}`;
  }
}
