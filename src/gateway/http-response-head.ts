import { BODY_UNTIL_CLOSE, CHUNKED_BODY, FramingHeaders, NO_BODY, type BodyFraming } from '../core/http1-body.ts';
import { HEAD_END, headerIs, headerTokens, lineEnd, readHeaderLines } from '../core/http1-header-lines.ts';

/**
 * A pure reader of an HTTP/1.x response head, for the gateway's relay: the
 * status for the audit record and how the body is framed, so that the
 * relay knows where each response ends on a keep-alive connection while it
 * passes the bytes on as they came. Never throws, never consumes.
 */

export type ResponseHeadResult =
  | { status: 'incomplete' }
  | { status: 'malformed'; reason: string }
  | {
      status: 'complete';
      code: number;
      /** Length of the head, up to and including the blank line. */
      length: number;
      body: BodyFraming;
      /** The server closes the connection after this response. */
      close: boolean;
    };

/** Node's own limit for a response head. */
export const MAX_RESPONSE_HEAD = 16 * 1024;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: [^\r\n]*)?$/;

/** `method`: the request's, since a response to HEAD has no body whatever its headers say. */
export function parseHttpResponseHead(data: Buffer, method: string): ResponseHeadResult {
  const end = data.indexOf(HEAD_END);
  if (end < 0) return data.length >= MAX_RESPONSE_HEAD ? malformed(`response head longer than ${MAX_RESPONSE_HEAD} bytes`) : { status: 'incomplete' };
  if (end + 4 > MAX_RESPONSE_HEAD) return malformed(`response head longer than ${MAX_RESPONSE_HEAD} bytes`);
  const text = data.toString('latin1', 0, end);
  const firstEnd = lineEnd(text, 0);
  const statusLine = STATUS_LINE.exec(firstEnd === text.length ? text : text.slice(0, firstEnd));
  if (!statusLine) return malformed(`invalid status line "${text.slice(0, Math.min(firstEnd, 40))}"`);
  const code = Number(statusLine[2]);
  let close = statusLine[1] === '0';
  const framing = new FramingHeaders();
  const problem = readHeaderLines(text, firstEnd + 2, (name, value) => {
    if (headerIs(name, 'connection')) {
      const tokens = headerTokens(value);
      if (tokens.includes('close')) close = true;
      else if (tokens.includes('keep-alive')) close = false;
    }
    return framing.take(name, value);
  });
  if (problem !== undefined) return malformed(problem);
  const body = responseBody(code, method, framing);
  if (typeof body === 'string') return malformed(body);
  return { status: 'complete', code, length: end + 4, body, close: close || body.kind === 'until-close' };
}

/** RFC 9112 6.3; a response with both framings is refused rather than guessed at, as a request would be. */
function responseBody(code: number, method: string, { contentLength, transferEncoding }: FramingHeaders): BodyFraming | string {
  if (method === 'HEAD' || (code >= 100 && code < 200) || code === 204 || code === 304) return NO_BODY;
  if (transferEncoding !== undefined) {
    if (contentLength !== undefined) return 'both Content-Length and Transfer-Encoding';
    const codings = headerTokens(transferEncoding);
    return codings[codings.length - 1] === 'chunked' ? CHUNKED_BODY : BODY_UNTIL_CLOSE;
  }
  if (contentLength === undefined) return BODY_UNTIL_CLOSE;
  if (!/^\d{1,15}$/.test(contentLength)) return `invalid Content-Length "${contentLength}"`;
  const bytes = Number(contentLength);
  return bytes === 0 ? NO_BODY : { kind: 'length', bytes };
}

function malformed(reason: string): { status: 'malformed'; reason: string } {
  return { status: 'malformed', reason };
}
