import type { BodyFraming } from './http1-body.ts';

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
const REQUEST_LINE = /^([A-Z]+) (\S+) HTTP\/1\.([01])$/;
export const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/;
const HOST_VALUE = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:@/\s[\]]+))(?::(\d{1,5}))?$/;
const ABSOLUTE_TARGET = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/;

export function parseHttpRequestHead(data: Buffer): HttpHeadResult {
  if (!PREFIXES.some((p) => startsLike(data, p))) return { status: 'not_http' };
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) {
    return data.length >= MAX_HTTP_HEAD ? malformed(`request head longer than ${MAX_HTTP_HEAD} bytes`) : { status: 'incomplete' };
  }
  if (end + 4 > MAX_HTTP_HEAD) return malformed(`request head longer than ${MAX_HTTP_HEAD} bytes`);
  const lines = data.subarray(0, end).toString('latin1').split('\r\n');
  const requestLine = REQUEST_LINE.exec(lines[0]!);
  if (!requestLine) return malformed('invalid request line');
  const [, method, target, minor] = requestLine as unknown as [string, string, string, string];
  const headers: Array<[string, string]> = [];
  let host: string | null | undefined;
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;
  let upgrade = method === 'CONNECT';
  for (const line of lines.slice(1)) {
    const header = HEADER_LINE.exec(line);
    // Folded or invalid header lines are how requests get smuggled past inspection.
    if (!header) return malformed('invalid header line');
    headers.push([header[1]!, header[2]!]);
    const name = header[1]!.toLowerCase();
    if (name === 'content-length') {
      if (contentLength !== undefined && contentLength !== header[2]) return malformed('Content-Length headers that disagree');
      contentLength = header[2]!;
    } else if (name === 'transfer-encoding') {
      transferEncoding = transferEncoding === undefined ? header[2]! : `${transferEncoding}, ${header[2]}`;
    } else if (name === 'upgrade') {
      upgrade = true;
    }
    if (name !== 'host') continue;
    if (host !== undefined) return malformed('more than one Host header');
    host = header[2] === '' ? null : hostOf(header[2]!);
    if (host === undefined) return malformed('invalid Host header');
  }
  const body = requestBody(contentLength, transferEncoding);
  if (typeof body === 'string') return malformed(body);
  let targetHost: string | null = null;
  const absolute = ABSOLUTE_TARGET.exec(target);
  if (absolute) {
    const authority = hostOf(absolute[1]!.replace(/^.*@/, ''));
    if (authority === undefined) return malformed('invalid host in the request target');
    targetHost = authority;
  }
  const version = minor === '0' ? '1.0' : '1.1';
  return { status: 'complete', method, version, target, host: host ?? null, targetHost, length: end + 4, headers, body, upgrade };
}

/**
 * The framing of the body, or why it cannot be trusted: both Content-Length
 * and Transfer-Encoding, or a coding other than a final `chunked`, is how a
 * second request gets hidden from whoever reads the first (request smuggling).
 */
function requestBody(contentLength: string | undefined, transferEncoding: string | undefined): BodyFraming | string {
  if (transferEncoding !== undefined) {
    if (contentLength !== undefined) return 'both Content-Length and Transfer-Encoding';
    if (transferEncoding.trim().toLowerCase() !== 'chunked') return `Transfer-Encoding "${transferEncoding}" (only chunked is read)`;
    return { kind: 'chunked' };
  }
  if (contentLength !== undefined && !/^\d{1,15}$/.test(contentLength)) return `invalid Content-Length "${contentLength}"`;
  const bytes = contentLength === undefined ? 0 : Number(contentLength);
  return bytes === 0 ? { kind: 'none' } : { kind: 'length', bytes };
}

/** The host part of `host[:port]` or `[v6][:port]`; undefined when it is not one. */
export function hostOf(value: string): string | undefined {
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

/** True when `data` and `prefix` agree on their common length. */
function startsLike(data: Buffer, prefix: Buffer): boolean {
  const n = Math.min(data.length, prefix.length);
  return data.subarray(0, n).equals(prefix.subarray(0, n));
}

function malformed(reason: string): { status: 'malformed'; reason: string } {
  return { status: 'malformed', reason };
}
