import { headerIs, headerTokens } from '../core/http1-header-lines.ts';
import type { HttpHeadResult } from '../core/http1-request-head.ts';

/**
 * The bytes the relay writes itself: a request head as it goes to the
 * destination, and the gateway's own answers (a 404 like Istio's blackhole
 * route, a refusal, a failure to reach the destination).
 */

type RequestHead = Extract<HttpHeadResult, { status: 'complete' }>;

/** Hop-by-hop headers (RFC 9110 7.6.1) and the ones the gateway sets itself. Transfer-Encoding stays: the body passes as framed. */
const DROPPED = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'upgrade', 'x-forwarded-client-cert', 'x-request-id']);

/** The tokens of every Connection header, lower-cased: `close`, `keep-alive`, and the names of more hop-by-hop headers. */
export function connectionTokens(headers: ReadonlyArray<[string, string]>): Set<string> {
  const tokens = new Set<string>();
  for (const [name, value] of headers) {
    if (headerIs(name, 'connection')) for (const token of headerTokens(value)) tokens.add(token);
  }
  return tokens;
}

/**
 * The request head for the destination: origin-form target, hop-by-hop headers (and those
 * `connection`, the head's connectionTokens(), names) out, x-request-id and x-forwarded-client-cert in.
 */
export function upstreamHead(head: RequestHead, connection: ReadonlySet<string>, path: string, requestId: string, xfcc: string | undefined): Buffer {
  let out = `${head.method} ${path} HTTP/${head.version}\r\n`;
  for (const [name, value] of head.headers) {
    const lower = name.toLowerCase();
    if (DROPPED.has(lower) || connection.has(lower)) continue;
    out += `${name}: ${value}\r\n`;
  }
  out += `x-request-id: ${requestId}\r\n`;
  if (xfcc !== undefined) out += `x-forwarded-client-cert: ${xfcc}\r\n`;
  return Buffer.from(`${out}\r\n`, 'latin1');
}

export interface LocalAnswer {
  status: 400 | 403 | 404 | 502 | 504;
  /** Why, for the body; a 404 says only that no route exists, as Istio's does. */
  detail?: string;
}

const REASONS: Record<LocalAnswer['status'], string> = { 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 502: 'Bad Gateway', 504: 'Gateway Timeout' };

/** `last`: the tunnel ends after it, and the answer says so. An answer to HEAD has no body. */
export function localResponse(answer: LocalAnswer, last: boolean, method: string): Buffer {
  const body = answer.status === 404 ? 'egressd gateway: no route to this host\n' : `egressd gateway: ${answer.detail ?? REASONS[answer.status]}\n`;
  const head = [
    `HTTP/1.1 ${answer.status} ${REASONS[answer.status]}`,
    'content-type: text/plain',
    `content-length: ${Buffer.byteLength(body)}`,
    ...(last ? ['connection: close'] : []),
  ];
  return Buffer.from(`${head.join('\r\n')}\r\n\r\n${method === 'HEAD' ? '' : body}`);
}
