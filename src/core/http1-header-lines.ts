/**
 * The header lines of an HTTP/1 head, read the way the request and response
 * parsers both need: strictly (a folded line, a name that is not a token, a
 * bare CR or LF are how messages get smuggled past inspection) and with as
 * few objects as possible, since every plaintext request and response through
 * the agent and the gateway is read. Each kilobyte of garbage per request at
 * 1,000 requests/s is one young-generation collection a second (with 1 MiB
 * semispaces), each a pause and 256 fresh pages on the request path: no line
 * arrays, no regular-expression match per line, no lower-cased copies.
 */

/** The end of a head; a Buffer, so that indexOf compares bytes and converts no string. */
export const HEAD_END = Buffer.from('\r\n\r\n');

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const SP = 0x20;
const HTAB = 0x09;

/** Where the line starting at `start` ends: its CRLF, or the end of the head. */
export function lineEnd(text: string, start: number): number {
  const at = text.indexOf('\r\n', start);
  return at < 0 ? text.length : at;
}

/**
 * Calls `visit` with each header line's name (its case kept) and value (without surrounding
 * blanks), from `start` (the first line after the start line) to the end of `text` (the head,
 * latin1, without its blank line). Returns the first problem: an invalid line, or what `visit` said.
 */
export function readHeaderLines(text: string, start: number, visit: (name: string, value: string) => string | undefined): string | undefined {
  while (start < text.length) {
    const stop = lineEnd(text, start);
    const colon = text.indexOf(':', start);
    if (colon <= start || colon >= stop || hasBareLineBreak(text, start, stop)) return 'invalid header line';
    const name = text.slice(start, colon);
    if (!HEADER_NAME.test(name)) return 'invalid header line';
    let from = colon + 1;
    let to = stop;
    while (from < to && isBlank(text.charCodeAt(from))) from++;
    while (to > from && isBlank(text.charCodeAt(to - 1))) to--;
    const problem = visit(name, text.slice(from, to));
    if (problem !== undefined) return problem;
    start = stop + 2;
  }
  return undefined;
}

/** A header name compared without case to a lower-case one, without a lower-cased copy. */
export function headerIs(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if ((c >= 0x41 && c <= 0x5a ? c + 0x20 : c) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** The members of a comma-separated header value (Connection, Transfer-Encoding), lower-cased, blanks trimmed. */
export function headerTokens(value: string): string[] {
  return value.toLowerCase().split(',').map((token) => token.trim());
}

function hasBareLineBreak(text: string, start: number, stop: number): boolean {
  const cr = text.indexOf('\r', start);
  const lf = text.indexOf('\n', start);
  return (cr >= 0 && cr < stop) || (lf >= 0 && lf < stop);
}

function isBlank(code: number): boolean {
  return code === SP || code === HTAB;
}
