import { CHUNKED_BODY, FramingHeaders, NO_BODY, type BodyFraming } from './http1-body.ts';
import { HEAD_END, headerIs, lineEnd, readHeaderLines } from './http1-header-lines.ts';

/**
 * A pure reader of an HTTP/1.x request head, from whatever bytes arrived so
 * far: the method, the target, the Host header, every header line and how
 * the body is framed. The agent sniffs and guards plaintext traffic with it,
 * the gateway relays requests by it. Like the ClientHello reader it never
 * throws and never consumes.
 */

export type HttpHeadResult =
  | { status: 'incomplete' }
  | { status: 'not_http' }
  | { status: 'malformed'; reason: string }
  | {
      status: 'complete';
      method: string;
      version: '1.0' | '1.1';
      /** The request target as sent (origin-form `/p?q`, or absolute-form `http://h/p`). */
      target: string;
      /** Host named by the Host header, without port; null when absent or empty. */
      host: string | null;
      /** Host named by an absolute-form target, without port. */
      targetHost: string | null;
      /** Length of the head, up to and including the blank line. */
      length: number;
      /** Every header line as sent: name (its case kept) and value without surrounding blanks. */
      headers: Array<[string, string]>;
      /** How the request's body is framed (RFC 9112 6.3), for finding where the next request starts. */
      body: BodyFraming;
      /**
       * An Upgrade header (WebSocket, h2c) or the CONNECT method: if the server
       * agrees, what follows the request is another protocol, not HTTP/1.
       */
      upgrade: boolean;
    };

/** Methods whose request line we recognise; anything else is not HTTP/1 to us and is decided by IP. */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];
const PREFIXES = METHODS.map((m) => Buffer.from(`${m} `));
/** Heads past this size are refused by common servers too (Node's default limit is 16 KiB). */
export const MAX_HTTP_HEAD = 16 * 1024;
const TARGET = /^\S+$/;
const HOST_VALUE = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:@/\s[\]]+))(?::(\d{1,5}))?$/;
const PLAIN_HOST = /^[^:@/\s[\]]+$/;
const ABSOLUTE_TARGET = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/;

/** With as few objects as it can (http1-header-lines.ts says why): the head's string, one per name and value. */
export function parseHttpRequestHead(data: Buffer): HttpHeadResult {
  const method = methodOf(data);
  if (method === undefined) return { status: 'not_http' };
  const end = data.indexOf(HEAD_END);
  if (end < 0) {
    return data.length >= MAX_HTTP_HEAD ? malformed(`request head longer than ${MAX_HTTP_HEAD} bytes`) : { status: 'incomplete' };
  }
  if (end + 4 > MAX_HTTP_HEAD) return malformed(`request head longer than ${MAX_HTTP_HEAD} bytes`);
  const text = data.toString('latin1', 0, end);
  // `METHOD SP target SP HTTP/1.x`: the method is known (a complete head holds all of its prefix), the target has no blanks.
  const firstEnd = lineEnd(text, 0);
  const targetEnd = text.indexOf(' ', method.length + 1);
  const minor = text.charCodeAt(firstEnd - 1);
  if (targetEnd < 0 || targetEnd + 9 !== firstEnd || !text.startsWith('HTTP/1.', targetEnd + 1) || (minor !== 0x30 && minor !== 0x31)) {
    return malformed('invalid request line');
  }
  const target = text.slice(method.length + 1, targetEnd);
  if (!TARGET.test(target)) return malformed('invalid request line');
  const headers: Array<[string, string]> = [];
  let host: string | null | undefined;
  const framing = new FramingHeaders();
  let upgrade = method === 'CONNECT';
  const problem = readHeaderLines(text, firstEnd + 2, (name, value) => {
    headers.push([name, value]);
    if (headerIs(name, 'upgrade')) {
      upgrade = true;
    } else if (headerIs(name, 'host')) {
      if (host !== undefined) return 'more than one Host header';
      host = value === '' ? null : hostOf(value);
      if (host === undefined) return 'invalid Host header';
    }
    return framing.take(name, value);
  });
  if (problem !== undefined) return malformed(problem);
  const body = requestBody(framing, minor === 0x30);
  if (typeof body === 'string') return malformed(body);
  let targetHost: string | null = null;
  const absolute = target.charCodeAt(0) === 0x2f ? null : ABSOLUTE_TARGET.exec(target);
  if (absolute) {
    // A WHATWG URL parser reads `\` as `/`: `http://evil\@api/` is a request for evil to such a server.
    if (absolute[1]!.includes('\\')) return malformed('a backslash in the request target\'s authority');
    const authority = hostOf(absolute[1]!.replace(/^.*@/, ''));
    if (authority === undefined) return malformed('invalid host in the request target');
    targetHost = authority;
  }
  const version = minor === 0x30 ? '1.0' : '1.1';
  return { status: 'complete', method, version, target, host: host ?? null, targetHost, length: end + 4, headers, body, upgrade };
}

/**
 * The framing of the body, or why it cannot be trusted: both Content-Length
 * and Transfer-Encoding, or a coding other than a final `chunked`, is how a
 * second request gets hidden from whoever reads the first (request smuggling).
 */
function requestBody({ contentLength, transferEncoding }: FramingHeaders, http10: boolean): BodyFraming | string {
  if (transferEncoding !== undefined) {
    // RFC 9112 6.1: framing by Transfer-Encoding in an HTTP/1.0 message is faulty; a 1.0 server may ignore it.
    if (http10) return 'Transfer-Encoding in an HTTP/1.0 request';
    if (contentLength !== undefined) return 'both Content-Length and Transfer-Encoding';
    if (transferEncoding.trim().toLowerCase() !== 'chunked') return `Transfer-Encoding "${transferEncoding}" (only chunked is read)`;
    return CHUNKED_BODY;
  }
  if (contentLength !== undefined && !/^\d{1,15}$/.test(contentLength)) return `invalid Content-Length "${contentLength}"`;
  const bytes = contentLength === undefined ? 0 : Number(contentLength);
  return bytes === 0 ? NO_BODY : { kind: 'length', bytes };
}

/** The host part of `host[:port]` or `[v6][:port]`; undefined when it is not one. */
export function hostOf(value: string): string | undefined {
  // The common case, a name without a port, is the value itself.
  if (PLAIN_HOST.test(value)) return value;
  const m = HOST_VALUE.exec(value);
  if (!m) return undefined;
  if (m[3] !== undefined && Number(m[3]) > 65535) return undefined;
  return m[1] ?? m[2]!;
}

/** The path of a request target without its query, which may carry credentials that have no place in an audit log. */
export function auditPath(target: string): string {
  const absolute = ABSOLUTE_TARGET.exec(target);
  const path = (absolute ? target.slice(absolute[0].length) : target).split(/[?#]/, 1)[0]!;
  return path === '' ? '/' : path;
}

/** The method `data` could be, or begins, a request line of: it agrees with the method and its space on their common length. */
function methodOf(data: Buffer): string | undefined {
  next: for (let m = 0; m < PREFIXES.length; m++) {
    const prefix = PREFIXES[m]!;
    const n = Math.min(data.length, prefix.length);
    for (let i = 0; i < n; i++) if (data[i] !== prefix[i]) continue next;
    return METHODS[m];
  }
  return undefined;
}

function malformed(reason: string): { status: 'malformed'; reason: string } {
  return { status: 'malformed', reason };
}
