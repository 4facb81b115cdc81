import { randomUUID } from 'node:crypto';
import type { ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { BodyReader } from '../core/http1-body.ts';
import { MAX_HTTP_HEAD, parseHttpRequestHead } from '../core/http1-request-head.ts';
import { errorMessage } from '../core/errors.ts';
import { RequestHostCheck } from '../core/http1-request-host.ts';
import { parseHttpResponseHead } from './http-response-head.ts';
import { connectionTokens, localResponse, upstreamHead, type LocalAnswer } from './http-relay-messages.ts';
import type { HttpTunnel } from './tunnel.ts';
import type { TunnelRecord } from './tunnel-record.ts';
import { DialError } from './upstream-dial.ts';

/**
 * One HTTP tunnel, relayed request by request without re-framing: each
 * request head is read, checked against the tunnel's host and rewritten
 * (hop-by-hop headers out, x-request-id and x-forwarded-client-cert in),
 * its body passes as it came; each response passes back as it came, read
 * only for its status and where it ends. Requests may be pipelined; the
 * answers the gateway gives itself (404 for a host no rule allows, 502 when
 * the destination cannot be reached) keep their place among the responses.
 * One audit record per request, finished when its response has passed.
 */

export interface RelayContext {
  /** A new audit record for a request of this tunnel, already decided. */
  record: () => TunnelRecord;
  /** An idle connection to the tunnel's destination, or a new one. */
  connect: () => Promise<{ socket: Socket; generation: number }>;
  /** Takes back a connection between two exchanges. */
  release: (socket: Socket, generation: number) => void;
  /** `x-forwarded-client-cert` for the requests, when the rule wants one. */
  xfcc: string | undefined;
  onResponse: (status: number | null) => void;
  idleTimeoutMs: number;
}

interface Exchange {
  record: TunnelRecord;
  method: string;
  /** What the gateway answers itself, instead of the destination; written when the exchange's turn comes. */
  local?: LocalAnswer;
  status: number | null;
  /** The tunnel closes after this exchange (the request said so, or the server did). */
  last: boolean;
}

interface Upstream {
  socket: Socket;
  generation: number;
  /** False once the server said it closes the connection. */
  reusable: boolean;
  /** Takes the relay's listeners off the socket. */
  detach: () => void;
}

const EMPTY: Buffer = Buffer.alloc(0);

export class HttpRelay {
  readonly #stream: ServerHttp2Stream;
  readonly #tunnel: HttpTunnel;
  readonly #hosts: RequestHostCheck;
  readonly #ctx: RelayContext;
  #upstream: Upstream | undefined;
  #connecting = false;
  #requests = 0;
  /** Requests, from the tunnel: a head to read, a body to pass (or skip), or no more requests. */
  #request: 'head' | 'body' | 'stopped' = 'head';
  #requestPending: Buffer = EMPTY;
  #requestBody: BodyReader | undefined;
  /** The exchange the request bytes being read belong to, while they go upstream. */
  #sending: Exchange | undefined;
  /** Exchanges waiting for their answer, oldest first. */
  readonly #queue: Exchange[] = [];
  #response: 'head' | 'body' = 'head';
  #responsePending: Buffer = EMPTY;
  #responseBody: BodyReader | undefined;
  /** No more requests will be read: the tunnel ends once the queue is empty. */
  #closing = false;
  /** The application half-closed: what it sent is answered, then the tunnel ends. */
  #appEnded = false;
  /** Writes wait for a drain: the other side is paused until then. */
  #upBlocked = false;
  #downBlocked = false;

  constructor(stream: ServerHttp2Stream, tunnel: HttpTunnel, ctx: RelayContext) {
    this.#stream = stream;
    this.#tunnel = tunnel;
    this.#hosts = new RequestHostCheck(tunnel.request.host);
    this.#ctx = ctx;
    stream.on('data', (chunk: Buffer) => this.#onRequestData(chunk));
    stream.once('end', () => {
      this.#appEnded = true;
      // A request cut inside its body can never be answered.
      if (this.#sending) this.#stream.close();
      else this.#pump();
    });
    stream.once('close', () => this.#onStreamClose());
    stream.setTimeout(ctx.idleTimeoutMs, () => {
      if (this.#queue.length === 0 && this.#request === 'head' && this.#requestPending.length === 0) stream.close();
    });
  }

  #onRequestData(chunk: Buffer): void {
    let data = this.#requestPending.length === 0 ? chunk : Buffer.concat([this.#requestPending, chunk]);
    this.#requestPending = EMPTY;
    while (data.length > 0) {
      if (this.#request === 'stopped') return;
      if (this.#request === 'body') {
        const step = this.#requestBody!.read(data);
        if ('error' in step) return this.#badRequest(`request ${this.#requests}: ${step.error}`);
        if (this.#sending) this.#sendUp(this.#sending, data.subarray(0, step.used));
        data = data.subarray(step.used);
        if (step.done) this.#requestDone();
        continue;
      }
      const used = this.#readHead(data);
      if (used === 0) return;
      data = data.subarray(used);
    }
  }

  /** Reads the request head `data` starts with; returns the bytes it took, or 0 when it must wait (more bytes, a connection). */
  #readHead(data: Buffer): number {
    const head = parseHttpRequestHead(data);
    if (head.status === 'incomplete') {
      if (data.length >= MAX_HTTP_HEAD) this.#badRequest(`request ${this.#requests + 1}: a head longer than ${MAX_HTTP_HEAD} bytes`);
      else this.#requestPending = data;
      return 0;
    }
    if (head.status !== 'complete') {
      this.#badRequest(`request ${this.#requests + 1} is not a valid HTTP/1 request${head.status === 'malformed' ? ` (${head.reason})` : ''}`);
      return 0;
    }
    if (head.method === 'CONNECT') {
      this.#badRequest(`request ${this.#requests + 1} is a CONNECT, which an HTTP tunnel does not carry`);
      return 0;
    }
    const { decision } = this.#tunnel.authorization;
    const other = this.#hosts.other(head.host, head.targetHost);
    const named = head.host !== null || head.targetHost !== null;
    const forward = decision.allow && other === undefined && named;
    if (forward && !this.#upstream) {
      // Read again once connected: nothing of this request is taken before it can go somewhere.
      this.#requestPending = data;
      this.#connect();
      return 0;
    }
    this.#requests++;
    const requestId = headerValue(head.headers, 'x-request-id') ?? randomUUID();
    const path = originForm(head.target);
    const record = this.#ctx.record();
    record.http({ method: head.method, path }, requestId);
    const connection = connectionTokens(head.headers);
    const exchange: Exchange = { record, method: head.method, status: null, last: head.version === '1.0' || connection.has('close') };
    this.#queue.push(exchange);
    if (!decision.allow) {
      exchange.local = { status: 404 };
    } else if (!forward) {
      const detail = `request host "${other ?? ''}" is not the tunnel's host ${this.#tunnel.request.host}`;
      record.refused('host_mismatch', detail);
      exchange.local = { status: 404 };
    } else {
      const { socket } = this.#upstream!;
      if (socket.remoteAddress !== undefined && socket.remotePort !== undefined) record.destination(socket.remoteAddress, socket.remotePort);
      this.#sending = exchange;
      this.#sendUp(exchange, upstreamHead(head, connection, path, requestId, this.#ctx.xfcc));
    }
    this.#requestBody = new BodyReader(head.body);
    this.#request = 'body';
    // Either way the gateway's own answer, if this exchange has one, goes out now when it is next in line.
    if (this.#requestBody.done) this.#requestDone();
    else this.#pump();
    return head.length;
  }

  #requestDone(): void {
    const last = this.#queue[this.#queue.length - 1];
    this.#sending = undefined;
    this.#request = last?.last === true ? 'stopped' : 'head';
    if (this.#request === 'stopped') this.#closing = true;
    this.#pump();
  }

  #connect(): void {
    if (this.#connecting) return;
    this.#connecting = true;
    this.#stream.pause();
    this.#ctx.connect().then(
      (upstream) => {
        this.#connecting = false;
        if (this.#stream.destroyed) return this.#ctx.release(upstream.socket, upstream.generation);
        this.#attach(upstream);
        this.#stream.resume();
        this.#onRequestData(EMPTY);
      },
      (err: unknown) => {
        this.#connecting = false;
        if (this.#stream.destroyed) return;
        // The request that needed the connection gets the failure as its answer, and the tunnel ends after it.
        const data = this.#requestPending;
        this.#requestPending = EMPTY;
        const head = parseHttpRequestHead(data);
        this.#requests++;
        const record = this.#ctx.record();
        if (head.status === 'complete') record.http({ method: head.method, path: originForm(head.target) });
        const exchange: Exchange = { record, method: head.status === 'complete' ? head.method : 'GET', status: null, last: true };
        if (err instanceof DialError && err.failure === 'forbidden_address') {
          record.refused('forbidden_address', err.message);
          exchange.local = { status: 403, detail: err.message };
        } else {
          record.error(errorMessage(err));
          exchange.local = { status: err instanceof DialError && err.failure === 'timeout' ? 504 : 502, detail: errorMessage(err) };
        }
        this.#queue.push(exchange);
        this.#request = 'stopped';
        this.#closing = true;
        this.#stream.resume();
        this.#pump();
      },
    );
  }

  #attach({ socket, generation }: { socket: Socket; generation: number }): void {
    const onData = (chunk: Buffer): void => this.#onResponseData(chunk);
    const onError = (err: Error): void => this.#upstreamGone(upstream, errorMessage(err));
    const onEnd = (): void => this.#upstreamGone(upstream, undefined);
    const onClose = (): void => this.#upstreamGone(upstream, 'the destination closed the connection');
    const onDrain = (): void => {
      if (!this.#upBlocked) return;
      this.#upBlocked = false;
      this.#stream.resume();
    };
    socket.on('data', onData).on('error', onError).on('end', onEnd).on('close', onClose).on('drain', onDrain);
    const upstream: Upstream = {
      socket,
      generation,
      reusable: true,
      detach: () => socket.off('data', onData).off('error', onError).off('end', onEnd).off('close', onClose).off('drain', onDrain),
    };
    this.#upstream = upstream;
    socket.resume();
  }

  #sendUp(exchange: Exchange, bytes: Buffer): void {
    if (bytes.length === 0) return;
    exchange.record.addBytes(bytes.length, 0);
    if (!this.#upstream!.socket.write(bytes) && !this.#upBlocked) {
      this.#upBlocked = true;
      this.#stream.pause();
    }
  }

  #sendDown(exchange: Exchange, bytes: Buffer): void {
    if (bytes.length === 0) return;
    exchange.record.addBytes(0, bytes.length);
    if (!this.#stream.write(bytes) && !this.#downBlocked) {
      this.#downBlocked = true;
      this.#upstream?.socket.pause();
      this.#stream.once('drain', () => {
        this.#downBlocked = false;
        this.#upstream?.socket.resume();
      });
    }
  }

  #onResponseData(chunk: Buffer): void {
    let data = this.#responsePending.length === 0 ? chunk : Buffer.concat([this.#responsePending, chunk]);
    this.#responsePending = EMPTY;
    while (data.length > 0) {
      const exchange = this.#queue[0];
      if (exchange === undefined || exchange.local !== undefined) return this.#upstreamFailed('the destination sent bytes no request asked for');
      if (this.#response === 'body') {
        const step = this.#responseBody!.read(data);
        if ('error' in step) return this.#upstreamFailed(`response: ${step.error}`);
        this.#sendDown(exchange, data.subarray(0, step.used));
        data = data.subarray(step.used);
        if (step.done) this.#responseDone();
        continue;
      }
      const head = parseHttpResponseHead(data, exchange.method);
      if (head.status === 'incomplete') {
        this.#responsePending = data;
        return;
      }
      if (head.status === 'malformed') return this.#upstreamFailed(`invalid response: ${head.reason}`);
      // 101 would switch protocols, and the gateway never forwards an Upgrade.
      if (head.code === 101) return this.#upstreamFailed('a 101 response to a request that asked for no upgrade');
      this.#sendDown(exchange, data.subarray(0, head.length));
      data = data.subarray(head.length);
      if (head.code < 200) continue;
      exchange.status = head.code;
      if (head.close) {
        exchange.last = true;
        this.#upstream!.reusable = false;
      }
      this.#responseBody = new BodyReader(head.body);
      this.#response = 'body';
      if (this.#responseBody.done) this.#responseDone();
    }
  }

  #responseDone(): void {
    const exchange = this.#queue.shift()!;
    this.#response = 'head';
    this.#responseBody = undefined;
    this.#finish(exchange);
    if (exchange.last) {
      this.#request = 'stopped';
      this.#closing = true;
      // Requests pipelined behind it get no answer on this connection: the application sees it close, as from the server itself.
      for (const rest of this.#queue.splice(0)) {
        rest.record.error('not answered: the response before it closed the connection');
        this.#finish(rest);
      }
    }
    this.#pump();
  }

  #finish(exchange: Exchange): void {
    exchange.record.http({ status: exchange.status });
    this.#ctx.onResponse(exchange.status);
    exchange.record.finish();
  }

  /** Writes the gateway's own answers that are next in line, and ends the tunnel once nothing is left. */
  #pump(): void {
    let front: Exchange | undefined;
    while ((front = this.#queue[0]) !== undefined && front.local !== undefined && this.#sending !== front) {
      this.#queue.shift();
      front.status = front.local.status;
      if (!this.#stream.destroyed) this.#stream.write(localResponse(front.local, front.last, front.method));
      this.#finish(front);
      if (front.last) {
        this.#request = 'stopped';
        this.#closing = true;
      }
    }
    const noMoreRequests = this.#closing || (this.#appEnded && !this.#connecting && this.#request !== 'body');
    if (!noMoreRequests || this.#queue.length > 0 || this.#stream.destroyed) return;
    this.#releaseUpstream();
    this.#stream.end();
  }

  /** The connection goes back to the pool when it sits between two exchanges; otherwise it closes. */
  #releaseUpstream(): void {
    const upstream = this.#upstream;
    if (!upstream) return;
    this.#upstream = undefined;
    upstream.detach();
    const clean = upstream.reusable && this.#queue.length === 0 && this.#response === 'head' && this.#responsePending.length === 0 && this.#sending === undefined;
    if (clean) this.#ctx.release(upstream.socket, upstream.generation);
    else upstream.socket.destroy();
  }

  /** The destination's connection ended: between exchanges nothing is lost; otherwise what waits on it fails. */
  #upstreamGone(upstream: Upstream, error: string | undefined): void {
    if (this.#upstream !== upstream) return;
    this.#dropUpstream();
    // A response framed by the connection's end is complete now.
    if (this.#response === 'body' && this.#responseBody?.untilClose === true && error === undefined) this.#responseDone();
    const waiting = this.#queue.filter((e) => e.local === undefined);
    if (waiting.length === 0) return;
    this.#failWaiting(waiting, error ?? 'the destination closed the connection before its response');
  }

  #upstreamFailed(detail: string): void {
    if (!this.#dropUpstream()) return;
    this.#failWaiting(this.#queue.filter((e) => e.local === undefined), detail);
  }

  /** Closes the destination's connection, if there is one; returns whether there was. */
  #dropUpstream(): boolean {
    const upstream = this.#upstream;
    if (!upstream) return false;
    this.#upstream = undefined;
    upstream.detach();
    upstream.socket.destroy();
    return true;
  }

  /** Exchanges the destination will never answer: a 502 when nothing of the answer was sent yet, else the tunnel is cut. */
  #failWaiting(waiting: Exchange[], detail: string): void {
    const partial = this.#response === 'body' || this.#responsePending.length > 0 || (this.#queue[0]?.status ?? null) !== null;
    this.#request = 'stopped';
    this.#closing = true;
    this.#sending = undefined;
    if (partial) {
      for (const exchange of waiting) exchange.record.error(detail);
      this.#stream.close();
      return;
    }
    for (const exchange of waiting) {
      exchange.record.error(detail);
      exchange.local = { status: 502, detail };
      exchange.last = true;
    }
    this.#pump();
  }

  #badRequest(detail: string): void {
    this.#requests++;
    const record = this.#ctx.record();
    record.refused('bad_request', detail);
    this.#queue.push({ record, method: 'GET', status: null, last: true, local: { status: 400, detail } });
    this.#request = 'stopped';
    this.#closing = true;
    this.#pump();
  }

  #onStreamClose(): void {
    this.#releaseUpstream();
    for (const exchange of this.#queue.splice(0)) {
      exchange.record.error('the tunnel closed before the response');
      this.#finish(exchange);
    }
    if (this.#requests === 0) {
      const record = this.#ctx.record();
      record.error('the tunnel closed before a complete HTTP request');
      record.finish();
    }
  }
}

function headerValue(headers: ReadonlyArray<[string, string]>, name: string): string | undefined {
  for (const [n, v] of headers) if (n.length === name.length && n.toLowerCase() === name) return v;
  return undefined;
}

/** The path to send on: an absolute-form target loses its scheme and authority. */
function originForm(target: string): string {
  if (target.startsWith('/') || target === '*') return target;
  try {
    const url = new URL(target);
    return `${url.pathname}${url.search}`;
  } catch {
    return target;
  }
}
