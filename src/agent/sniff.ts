import type { Socket } from 'node:net';
import { parseClientHello } from '../core/client-hello.ts';
import { parseHttpRequestHead } from '../core/http1-request-head.ts';

/**
 * The sniff stage: reads the first bytes a client sends, without losing
 * them, until they name the destination (TLS ClientHello, HTTP request head)
 * or prove they will not. Every byte read is kept in `buffered` and must be
 * replayed upstream; the socket is left paused for the next stage.
 */

export interface SniffOptions {
  /** How long to wait for a first byte before deciding the protocol speaks server-first. */
  peekTimeoutMs: number;
  /** How long a started ClientHello or request head may take to complete. */
  sniffTimeoutMs: number;
  /** Bytes already read from the socket by someone else (an HTTP parser's `head`). */
  initial?: Buffer;
}

interface Common {
  buffered: Buffer;
  /** The client half-closed while we were reading: end the upstream after the replay. */
  ended: boolean;
}

export type Sniffed =
  | (Common & { kind: 'tls'; sni: string | null; alpn: string[] | null })
  | (Common & { kind: 'http'; method: string; target: string; host: string | null; targetHost: string | null })
  /** Nothing recognisable (server-first, another protocol, unparseable HTTP): the destination IP decides. */
  | (Common & { kind: 'tcp'; note: string })
  /** It started as TLS and is not a valid ClientHello. */
  | (Common & { kind: 'malformed_tls'; reason: string })
  /** The client went away (reset, or closed both ways) before we could decide. */
  | (Common & { kind: 'aborted'; error: string });

type Outcome = { kind: 'tls'; sni: string | null; alpn: string[] | null } | { kind: 'http'; method: string; target: string; host: string | null; targetHost: string | null } | { kind: 'tcp'; note: string } | { kind: 'malformed_tls'; reason: string };

/** What the bytes so far say; undefined while they could still become a hello or a head. `final`: no more bytes will come. */
export function classify(buffered: Buffer, final: boolean): Outcome | undefined {
  const hello = parseClientHello(buffered);
  if (hello.status === 'complete') return { kind: 'tls', sni: hello.sni, alpn: hello.alpn };
  if (hello.status === 'malformed') return { kind: 'malformed_tls', reason: hello.reason };
  if (hello.status === 'incomplete' && buffered.length > 0) {
    return final ? { kind: 'malformed_tls', reason: `ClientHello incomplete after ${buffered.length} bytes` } : undefined;
  }
  const head = parseHttpRequestHead(buffered);
  switch (head.status) {
    case 'complete':
      return { kind: 'http', method: head.method, target: head.target, host: head.host, targetHost: head.targetHost };
    case 'malformed':
      return { kind: 'tcp', note: `not a valid HTTP request: ${head.reason}` };
    case 'not_http':
      return { kind: 'tcp', note: 'neither TLS nor HTTP' };
    case 'incomplete':
      if (!final) return undefined;
      return { kind: 'tcp', note: buffered.length === 0 ? 'no bytes from the client' : 'incomplete HTTP request head' };
  }
}

export function sniff(socket: Socket, options: SniffOptions): Promise<Sniffed> {
  return new Promise((resolve) => {
    let buffered = options.initial ?? Buffer.alloc(0);
    let done = false;
    const finish = (result: Sniffed): void => {
      if (done) return;
      done = true;
      clearTimeout(peekTimer);
      clearTimeout(deadline);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.pause();
      resolve(result);
    };
    const settle = (outcome: Outcome | undefined, ended: boolean): void => {
      if (outcome) finish({ ...outcome, buffered, ended });
    };
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      settle(classify(buffered, false), false);
    };
    const onEnd = (): void => settle(classify(buffered, true), true);
    const onError = (err: Error): void => finish({ kind: 'aborted', error: err.message, buffered, ended: true });
    const onClose = (): void => finish({ kind: 'aborted', error: 'client closed the connection', buffered, ended: true });
    const peekTimer = setTimeout(() => {
      if (buffered.length === 0) finish({ kind: 'tcp', note: `no bytes within ${options.peekTimeoutMs} ms (server speaks first)`, buffered, ended: false });
    }, options.peekTimeoutMs);
    const deadline = setTimeout(() => settle(classify(buffered, true), false), options.sniffTimeoutMs);
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
    if (buffered.length > 0) settle(classify(buffered, false), false);
  });
}
