import { headerIs } from './http1-header-lines.ts';

/**
 * Where an HTTP/1 message body ends (RFC 9112 6.3, 7.1), for whoever relays
 * or inspects bytes as they pass without re-framing them: the agent's
 * request guard skips request bodies to reach the next request head, the
 * gateway's relay finds the end of each request and response. A reader
 * counts and checks; it never copies the body.
 */

export type BodyFraming = { kind: 'none' } | { kind: 'length'; bytes: number } | { kind: 'chunked' } | { kind: 'until-close' };

/** The framings without a length, shared by the request and response parsers: no object per message. */
export const NO_BODY: BodyFraming = Object.freeze({ kind: 'none' });
export const CHUNKED_BODY: BodyFraming = Object.freeze({ kind: 'chunked' });
export const BODY_UNTIL_CLOSE: BodyFraming = Object.freeze({ kind: 'until-close' });

/**
 * The Content-Length and Transfer-Encoding of a head, collected as its header lines are read
 * (http1-header-lines.ts): what the request and response parsers decide the framing from.
 */
export class FramingHeaders {
  contentLength: string | undefined;
  /** The codings of every Transfer-Encoding line, as one list. */
  transferEncoding: string | undefined;

  /** Takes a header line if it is one of the two; the problem when it contradicts an earlier one. */
  take(name: string, value: string): string | undefined {
    if (headerIs(name, 'content-length')) {
      if (this.contentLength !== undefined && this.contentLength !== value) return 'Content-Length headers that disagree';
      this.contentLength = value;
    } else if (headerIs(name, 'transfer-encoding')) {
      this.transferEncoding = this.transferEncoding === undefined ? value : `${this.transferEncoding}, ${value}`;
    }
    return undefined;
  }
}

/** `used`: how many of the bytes given belong to the body; the rest start the next message. */
export type BodyStep = { used: number; done: boolean } | { error: string };

/** Chunk-size and trailer lines longer than this are refused (Node's own parser allows far less). */
const MAX_LINE = 4096;
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,12})(?:[ \t]*;.*)?$/;

export class BodyReader {
  #state: 'length' | 'chunk-size' | 'chunk-data' | 'chunk-data-end' | 'trailers' | 'until-close' | 'done';
  /** Body bytes still to pass in the `length` and `chunk-data` states. */
  #remaining = 0;
  /** The framing line read so far, when a chunk ended inside it. */
  #line = '';

  constructor(framing: BodyFraming) {
    if (framing.kind === 'length' && framing.bytes > 0) {
      this.#state = 'length';
      this.#remaining = framing.bytes;
    } else if (framing.kind === 'chunked') {
      this.#state = 'chunk-size';
    } else if (framing.kind === 'until-close') {
      this.#state = 'until-close';
    } else {
      this.#state = 'done';
    }
  }

  get done(): boolean {
    return this.#state === 'done';
  }

  /** The body ends where the connection does (a response without length or chunks). */
  get untilClose(): boolean {
    return this.#state === 'until-close';
  }

  read(data: Buffer): BodyStep {
    let used = 0;
    while (used < data.length && this.#state !== 'done') {
      switch (this.#state) {
        case 'until-close':
          return { used: data.length, done: false };
        case 'length':
        case 'chunk-data': {
          const n = Math.min(this.#remaining, data.length - used);
          this.#remaining -= n;
          used += n;
          if (this.#remaining === 0) this.#state = this.#state === 'length' ? 'done' : 'chunk-data-end';
          break;
        }
        default: {
          const end = data.indexOf(10, used);
          const piece = data.toString('latin1', used, end < 0 ? data.length : end + 1);
          used += piece.length;
          this.#line += piece;
          if (end < 0) {
            if (this.#line.length > MAX_LINE) return { error: `a chunked framing line longer than ${MAX_LINE} bytes` };
            break;
          }
          if (!this.#line.endsWith('\r\n')) return { error: 'a chunked framing line not ended by CRLF' };
          const line = this.#line.slice(0, -2);
          this.#line = '';
          const problem = this.#framingLine(line);
          if (problem !== undefined) return { error: problem };
        }
      }
    }
    return { used, done: this.#state === 'done' };
  }

  /** One CRLF-terminated line of chunked framing. */
  #framingLine(line: string): string | undefined {
    if (this.#state === 'chunk-data-end') {
      if (line !== '') return 'chunk data not followed by CRLF';
      this.#state = 'chunk-size';
    } else if (this.#state === 'trailers') {
      if (line === '') this.#state = 'done';
    } else {
      const size = CHUNK_SIZE.exec(line);
      if (!size) return `invalid chunk size line "${line.slice(0, 40)}"`;
      this.#remaining = parseInt(size[1]!, 16);
      this.#state = this.#remaining === 0 ? 'trailers' : 'chunk-data';
    }
    return undefined;
  }
}
